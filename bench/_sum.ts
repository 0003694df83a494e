import { summariseProfile, formatProfile } from './lib/cpu-profile.ts';
console.log(formatProfile(summariseProfile(process.argv[2]), Number(process.argv[3] ?? 30)));
