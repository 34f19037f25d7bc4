#!/usr/bin/env bash
# The GitHub Action's audit step: ONE audit run writes the SARIF file and
# prints the annotations. Environment: PATHS (space separated), FAIL_ON
# (error|warning|info|never), GITHUB_OUTPUT, GITHUB_ENV, GITHUB_STEP_SUMMARY.
# Sets the step output sarif=<file> only when the SARIF file was written,
# so the upload step never meets "file not found"; AUDIT_FAILED=1 in
# GITHUB_ENV when the audit fails the job (findings at FAIL_ON, bad input,
# a crash).
set -u
sarif=ruleanalyzer-audit.sarif
rm -f "$sarif"
set -- --max-bytes "${MAX_BYTES:-16777216}"
if [ -n "${CONFIG:-}" ]; then set -- "$@" --config "$CONFIG"; fi
status=0
# shellcheck disable=SC2086 # PATHS is a list of paths
ruleanalyzer audit $PATHS "$@" --format sarif -o "$sarif" --annotate --fail-on "${FAIL_ON:-warning}" || status=$?
if [ -s "$sarif" ]; then
  echo "sarif=$sarif" >> "$GITHUB_OUTPUT"
else
  echo "::error title=ruleanalyzer::the audit stopped before writing its report (exit $status); the log above says why"
  echo "sarif=" >> "$GITHUB_OUTPUT"
fi
case "$status" in
  0) ;;
  1) echo "AUDIT_FAILED=1" >> "$GITHUB_ENV" ;;
  2) echo "::error title=ruleanalyzer::the audit could not read its input (exit 2)"
     echo "AUDIT_FAILED=1" >> "$GITHUB_ENV" ;;
  *) echo "::error title=ruleanalyzer::ruleanalyzer crashed (exit $status); please report it with the log above"
     echo "AUDIT_FAILED=1" >> "$GITHUB_ENV" ;;
esac
exit 0
