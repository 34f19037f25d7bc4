#!/usr/bin/env bash
# The GitHub Action's last step: fail the job when the audit or the diff did.
if [ -n "${AUDIT_FAILED:-}" ] || [ -n "${DIFF_FAILED:-}" ]; then
  exit 1
fi
