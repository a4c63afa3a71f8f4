// The machine side of fleetcast: task sequences and the step engine that runs them.
export * from './sequence.js';
export * from './conditions.js';
export * from './variables.js';
export * from './report.js';
export * from './content.js';
export * from './targets.js';
export * from './machine.js';
export * from './config.js';
export { readState, writeState, STATE_VERSION, type RunState, type StepRecord } from './state.js';
export { runSequence, RunnerSetupError, type RunOptions, type RunResult, type RunStatus, type StepSummary } from './runner.js';
