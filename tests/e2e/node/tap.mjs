// What the Node end-to-end scripts share: one `ok - <label>: ...` / `not ok - ...`
// line per check (read by scripts/test.sh), the closing count, and a timeout
// around an awaited promise.

export function checker(label) {
  let passed = 0;
  let failed = 0;
  return {
    check(name, condition, detail = "") {
      if (condition) passed++;
      else failed++;
      console.log(`${condition ? "ok" : "not ok"} - ${label}: ${name}${condition ? "" : `  (${String(detail).slice(0, 600)})`}`);
    },
    /// Prints the count and exits non-zero when a check failed.
    finish(title) {
      console.log(`${title}: ${passed} passed, ${failed} failed`);
      process.exit(failed ? 1 : 0);
    },
  };
}

export async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
