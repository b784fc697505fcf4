#!/usr/bin/env bash
# scripts/test.sh — `npm test`: the one test command. Sets up what the suite needs
# (dependencies, a running Docker engine, Chromium for the dashboard tests, the sandbox
# image), runs vitest once with
# both a readable and a JSON report, and ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== installing dependencies (npm ci)"
  npm ci --no-audit --no-fund || { echo "npm ci failed"; exit 2; }
fi

echo "== Docker engine"
bash scripts/ensure-docker.sh || { echo "a Docker engine is required for the sandbox tests (see above)"; exit 2; }

echo "== Chromium (the dashboard's browser tests)"
bash scripts/ensure-chromium.sh || { echo "Chromium is required for the dashboard's browser tests (see above)"; exit 2; }
echo "== redis-server (cluster tests)"
bash scripts/ensure-redis.sh || { echo "redis-server is required for the cluster tests (see above)"; exit 2; }

echo "== sandbox image"
npx tsx scripts/ensure-image.ts || { echo "could not build the sandbox image (see above)"; exit 2; }

report=.vitest-report.json
rm -f "$report"
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?

if [ -f "$report" ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    // A file that fails to load has no assertions but must still count as a failure.
    const brokenFiles = r.testResults.filter((f) => f.status === "failed" && f.assertionResults.length === 0).length;
    const skipped = (r.numPendingTests || 0) + (r.numTodoTests || 0);
    console.log(`${r.numPassedTests} passed, ${r.numFailedTests + brokenFiles} failed` + (skipped ? `, ${skipped} skipped` : ""));
  ' "$report"
else
  echo "0 passed, 1 failed"
  status=1
fi
exit $status
