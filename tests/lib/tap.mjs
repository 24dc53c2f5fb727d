// tap.mjs — a minimal sequential TAP producer for fanout's node tests.
// Each test is an async function; a thrown error (node:assert) fails it.
// Under CI=true a skipped test is reported as a failure: CI must never pass
// by skipping.
export function tap() {
  let n = 0;
  let failed = 0;
  const onlyCI = process.env.CI === 'true';
  const line = (s) => process.stdout.write(s + '\n');
  const diag = (s) => String(s).split('\n').forEach((l) => line('# ' + l));
  return {
    async test(name, fn, { timeoutMs = 60000 } = {}) {
      n += 1;
      let timer;
      try {
        await Promise.race([
          fn(),
          new Promise((_, rej) => {
            timer = setTimeout(() => rej(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        line(`ok ${n} - ${name}`);
      } catch (e) {
        failed += 1;
        line(`not ok ${n} - ${name}`);
        diag(e && e.stack ? e.stack : e);
      } finally {
        clearTimeout(timer);
      }
    },
    skip(name, why) {
      n += 1;
      if (onlyCI) {
        failed += 1;
        line(`not ok ${n} - ${name} # would skip under CI: ${why}`);
      } else {
        line(`ok ${n} - ${name} # SKIP ${why}`);
      }
    },
    diag,
    get failed() {
      return failed;
    },
    done() {
      line(`1..${n}`);
      process.exitCode = failed ? 1 : 0;
    },
  };
}
