// Test guest: what JavaScript's own nondeterministic APIs return under
// weft, and what a workflow that breaks the sandbox gets. The input names
// the mode.

import { workflow } from '../../../guest-sdk/js/weft.js';

export const { run, query } = workflow((ctx, mode) => {
  if (mode === 'clock-random') {
    const before = Date.now();
    ctx.sleep(5);
    const bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    return {
      time: before,
      time_after_sleep: Date.now(),
      date: new Date().toISOString(),
      ctx_now: ctx.now().toISOString(),
      random: Math.random(),
      crypto: Array.from(bytes),
    };
  }
  if (mode === 'side-effect-random') {
    // Randomness drawn inside a side effect (Math.random, crypto, the SDK);
    // what is drawn after it must replay the same.
    const draw = () => {
      const bytes = new Uint8Array(4);
      crypto.getRandomValues(bytes);
      return [Math.random(), Array.from(bytes), ctx.random().toString()];
    };
    const inside = ctx.sideEffect(draw);
    ctx.sleep(1);
    return { inside, after: draw() };
  }
  if (mode === 'fetch') {
    return fetch('http://127.0.0.1:9/');
  }
  if (mode === 'set-timeout') {
    setTimeout(() => {}, 1000);
    return 'scheduled';
  }
  throw new Error(`unknown mode ${mode}`);
});
