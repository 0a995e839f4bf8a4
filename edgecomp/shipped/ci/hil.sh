#!/usr/bin/env bash
# Hardware-in-the-loop check for any CI system: deploy the model to a real board, gate the
# results against a baseline, and leave a report, JUnit and a Markdown summary behind.
# `edgecomp ci init` copies it into a repository as ci/hil.sh; the GitHub Action in
# edgecomp's action.yml runs it too.
#
#   EDGECOMP_TARGET=pi4-lab-1 ci/hil.sh
#
# Settings (environment):
#   EDGECOMP_TARGET      the board: a target in the runner's inventory (required)
#   EDGECOMP_MODEL       what to deploy (default: the built-in demo)
#   EDGECOMP_BASELINE    what to compare with (default branch:main, the latest run on main)
#   EDGECOMP_CI_OUT      folder for everything written (default edgecomp-ci)
#   EDGECOMP_CI_BUILD    this build's name in the results (default GitHub's, GitLab's or
#                        Jenkins' build number, else the time)
#   EDGECOMP_DEPLOY_ARGS more flags for `edgecomp deploy` (calibration data, --runs...)
#   EDGECOMP_GATE_ARGS   more flags for `edgecomp gate` (--config ci/gate.toml, thresholds)
#   EDGECOMP_UNJUDGED    fail or pass: what a gate that could not judge (no baseline yet,
#                        an unstable board) does to the build. Default: pass on the
#                        baseline's own branch (its first run becomes the baseline), else fail
#   EDGECOMP_DB          the results store; a postgresql:// URL shares it between runners
#
# Exit status: 0 pass, 1 regression or a failed measurement, 2 could not judge (with
# EDGECOMP_UNJUDGED=fail), another non-zero status when a step could not run at all.
set -euo pipefail

: "${EDGECOMP_TARGET:?set EDGECOMP_TARGET to the name of the board (a target in the inventory)}"
baseline=${EDGECOMP_BASELINE:-branch:main}
out=${EDGECOMP_CI_OUT:-edgecomp-ci}
build=${EDGECOMP_CI_BUILD:-${GITHUB_RUN_ID:-${CI_PIPELINE_ID:-${BUILD_NUMBER:-$(date -u +%Y%m%dT%H%M%S)}}}}
# The branch being built, as edgecomp records it: the checkout's, else the CI's variables.
branch=$(git symbolic-ref --quiet --short HEAD 2>/dev/null \
         || echo "${GITHUB_HEAD_REF:-${GITHUB_REF_NAME:-${CI_COMMIT_REF_NAME:-}}}")
if [ "$baseline" = "branch:${branch}" ]; then
  unjudged=${EDGECOMP_UNJUDGED:-pass}
else
  unjudged=${EDGECOMP_UNJUDGED:-fail}
fi
tag="ci-${build}"
edgecomp=${EDGECOMP:-edgecomp}
read -r -a deploy_args <<< "${EDGECOMP_DEPLOY_ARGS:-}"
read -r -a gate_args <<< "${EDGECOMP_GATE_ARGS:-}"
model=()
[ -n "${EDGECOMP_MODEL:-}" ] && model=("$EDGECOMP_MODEL")
case "$unjudged" in fail|pass) ;; *) echo "EDGECOMP_UNJUDGED must be fail or pass" >&2; exit 64;; esac

mkdir -p "$out"
echo "::group::board ${EDGECOMP_TARGET}"
"$edgecomp" targets check "$EDGECOMP_TARGET"
echo "::endgroup::"

echo "::group::deploy (tag ${tag})"
deployed=0
"$edgecomp" deploy "${model[@]}" --target "$EDGECOMP_TARGET" --tag "$tag" \
    -o "$out/artifacts" --json "$out/results.json" "${deploy_args[@]}" || deployed=$?
echo "::endgroup::"

echo "::group::gate against ${baseline}"
gated=0
"$edgecomp" gate --baseline "$baseline" --tag "$tag" --junit "$out/junit.xml" \
    --summary "$out/summary.md" --json "$out/gate.json" --report "$out/gate.html" \
    "${gate_args[@]}" || gated=$?
echo "::endgroup::"

# gate.html is this build's results under the gate's verdict; report.html shows this build
# beside the last 30 days on the same board.
"$edgecomp" report --target "$EDGECOMP_TARGET" --since 30d -o "$out/report.html"

if [ "$deployed" -ne 0 ]; then
  echo "edgecomp deploy failed (status $deployed): see the log and $out/results.json" >&2
  exit 1
fi
if [ "$gated" -eq 2 ] && [ "$unjudged" = pass ]; then
  if [ -n "${EDGECOMP_UNJUDGED:-}" ]; then why="as EDGECOMP_UNJUDGED=pass asks"
  else why="on ${branch}, the baseline's own branch: this build is the next baseline"; fi
  echo "the gate could not judge this build (see $out/summary.md); passing ${why}" >&2
  exit 0
fi
exit "$gated"
