#!/usr/bin/env bash
# The GitHub Action's change-impact step (pull requests). Environment:
# BASE (the base commit), FILES (optional), DIFF_FAIL_ON (any|opened|never),
# MAX_BYTES, CONFIG (optional: the policy assertions' settings file),
# GITHUB_OUTPUT, GITHUB_ENV, GITHUB_STEP_SUMMARY. Writes the markdown report
# to the job summary, annotations to the log, and ruleanalyzer-diff.sarif
# (step output sarif=, empty when it was not written).
set -u
sarif=ruleanalyzer-diff.sarif
rm -f "$sarif" ruleanalyzer-diff.md
if ! git cat-file -e "$BASE^{commit}" 2>/dev/null; then
  git fetch --no-tags --depth=1 origin "$BASE" || true
fi
set -- --max-bytes "${MAX_BYTES:-16777216}"
if [ -n "${CONFIG:-}" ]; then set -- "$@" --policy "$CONFIG"; fi
status=0
# shellcheck disable=SC2086 # FILES is a list of paths
ruleanalyzer diff --git "$BASE" $FILES "$@" --format markdown -o ruleanalyzer-diff.md --fail-on never || status=$?
if [ -s ruleanalyzer-diff.md ]; then
  cat ruleanalyzer-diff.md >> "$GITHUB_STEP_SUMMARY"
fi
if [ "$status" -ne 0 ]; then
  echo "::error title=ruleanalyzer::the change-impact diff failed (exit $status); the log above says why"
  echo "DIFF_FAILED=1" >> "$GITHUB_ENV"
  echo "sarif=" >> "$GITHUB_OUTPUT"
  exit 0
fi
# the markdown report is in the job summary already: the annotations' overflow goes nowhere else
# shellcheck disable=SC2086
GITHUB_STEP_SUMMARY=/dev/null ruleanalyzer diff --git "$BASE" $FILES "$@" --format github --fail-on "${DIFF_FAIL_ON:-opened}" \
  || echo "DIFF_FAILED=1" >> "$GITHUB_ENV"
# shellcheck disable=SC2086
if ruleanalyzer diff --git "$BASE" $FILES "$@" --format sarif -o "$sarif" --fail-on never --no-findings \
    && [ -s "$sarif" ]; then
  echo "sarif=$sarif" >> "$GITHUB_OUTPUT"
else
  echo "sarif=" >> "$GITHUB_OUTPUT"
fi
exit 0
