/**
 * A second tierca "instance" on a test database, in this process or in a child process: its own
 * store connection, keystore, CA directory and rotation authority — optionally with a fault hook that
 * throws, or kills the whole process, after a given step of a renewal or a rollover. Dropping the
 * instance and opening a new one is a restart: nothing in memory survives, only the database.
 *
 * Run as a script (`node --import tsx test/helpers/rotation-instance.ts '<json>'`) it performs one
 * renewal or rollover and is killed with SIGKILL at the step named (see {@link ChildOrder}).
 */
import 'reflect-metadata';
import pino from 'pino';
import { SoftwareKeyStore } from '../../pki/keystore/software-keystore.ts';
import { openStore, type StoreOptions } from '../../server/storage/knex-store.ts';
import { buildConfig } from '../../server/config/load-config.ts';
import { FixedClock } from '../../server/clock.ts';
import { openServices, registrationAuthority, rotationServices, type Services } from '../../server/services.ts';
import type { RotationServices } from '../../server/ra/rotation/rotation-services.ts';
import type { RenewalService } from '../../server/ca/renewal.ts';
import type { RequestContext } from '../../server/ra/permissions.ts';
import type { Role, Store } from '../../server/storage/storage.ts';
import type { RenewalStep } from '../../server/ca/renewal.ts';
import type { RolloverStep } from '../../server/ca/ca-rollover.ts';

export interface Instance {
  store: Store;
  services: Services;
  /** Rotation services over this instance's services (and an RA of their own), with the faults asked for. */
  rotation: RotationServices & { caRenewals: RenewalService };
  /** A request context for the principal named `name` (made by the test ceremony). */
  ctx(name: string, requestId?: string): Promise<RequestContext>;
  close(): Promise<void>;
}

export interface Faults {
  renewal?: RenewalStep;
  rollover?: RolloverStep;
  /** 'throw' (default): an Error('injected fault at <step>'); 'kill': SIGKILL this process. */
  how?: 'throw' | 'kill';
}

/** Opens an instance on the database of `options` (passphrase of the test ceremony), at the fake time `clock`. */
export async function openInstance(options: StoreOptions, passphrase: string, clock: FixedClock, faults: Faults = {}): Promise<Instance> {
  const store = await openStore(options);
  try {
    const keystore = await SoftwareKeyStore.unlock({ passphrase, header: (await store.meta.get('keystore'))! });
    const config = buildConfig(JSON.parse((await store.meta.get('config'))!));
    const services = await openServices({ store, keystore, config, clock, log: pino({ level: 'silent' }) });
    const hook = <S extends string>(target: S | undefined) =>
      target
        ? {
            after(step: S) {
              if (step !== target) return;
              if (faults.how === 'kill') process.kill(process.pid, 'SIGKILL');
              throw new Error(`injected fault at ${step}`);
            },
          }
        : undefined;
    const ca = { ...services, keystore, onStatusChange: (record: { issuerId: string; serial: string }) => services.ocsp.invalidate(record.issuerId, record.serial) };
    const rotation = rotationServices(ca, registrationAuthority(ca), { renewal: hook(faults.renewal), rollover: hook(faults.rollover) });
    return {
      store,
      services,
      rotation,
      async ctx(name, requestId = `ctx-${name}`) {
        const principal = (await store.principals.list()).find((p) => p.name === name);
        if (!principal) throw new Error(`no principal ${name}`);
        return { principal: { id: principal.id, name: principal.name, role: principal.role as Role, domains: principal.domains }, source: 'test', requestId };
      },
      async close() {
        await services.scheduler.stop();
        services.ocsp.stopPolling();
        await services.signing.close();
        await store.close();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** What the child process does (argv[2] as JSON). */
export interface ChildOrder {
  options: StoreOptions;
  passphrase: string;
  /** ISO time of the fake clock. */
  now: string;
  kill: Faults;
  renew?: { serial: string; principal: string; requestId: string };
  rollover?: { caName: string; principal: string; requestId: string };
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const order = JSON.parse(process.argv[2]) as ChildOrder;
  const instance = await openInstance(order.options, order.passphrase, new FixedClock(new Date(order.now)), { ...order.kill, how: 'kill' });
  if (order.renew) {
    await instance.rotation.renewals.renew(await instance.ctx(order.renew.principal), order.renew.serial, { requestId: order.renew.requestId });
  }
  if (order.rollover) {
    await instance.rotation.rollovers.executeRollover(await instance.ctx(order.rollover.principal), { caName: order.rollover.caName, requestId: order.rollover.requestId });
  }
  await instance.close();
  process.stdout.write('completed without being killed\n');
}
