/**
 * Rotation as its clients see it: officers' renewals, devices' signed renewals, rotation runs and
 * their timer, CA rollover — one service per concern, wired by server/services.ts.
 */
import type { RenewalAuthority } from './renewal.service.ts';
import type { DeviceRenewal } from './device-signature.ts';
import type { RotationRunService } from './rotation-run.service.ts';
import type { RolloverService } from './rollover.service.ts';

export interface RotationServices {
  readonly renewals: RenewalAuthority;
  readonly devices: DeviceRenewal;
  /** `rotate due`, `rotate run` and the rotation timer (bootstrap starts it). */
  readonly runs: RotationRunService;
  readonly rollovers: RolloverService;
}
