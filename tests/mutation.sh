#!/usr/bin/env bash
# Mutation testing with mutmut, in a throwaway copy of the committed tree (never in the work
# tree: mutmut writes a mutants/ folder next to the sources). See docs/mutation-testing.md.
#
#   tests/mutation.sh domain    # engine/domain audit, calendar, sla, machine; unit tests only
#   tests/mutation.sh service   # payment, authorization and sweep code; in-process service tests
#
# The service set needs PostgreSQL (as for the integration tests). Results stay in the copy:
# `cd /tmp/sopflow-mutation-<set> && <repo>/.venv/bin/mutmut results` (or `browse`).
set -euo pipefail
set_name="${1:-domain}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${2:-/tmp/sopflow-mutation-$set_name}"
mutmut="$root/.venv/bin/mutmut"

rm -rf "$dir"
mkdir -p "$dir"
git -C "$root" archive HEAD | tar -x -C "$dir"
cd "$dir"

case "$set_name" in
domain)
    cat >>pyproject.toml <<'EOF'

[tool.mutmut]
source_paths = ["engine"]
only_mutate = ["engine/domain/audit.py", "engine/domain/calendar.py", "engine/domain/sla.py",
               "engine/domain/machine.py"]
pytest_add_cli_args_test_selection = ["tests/test_audit_hash.py", "tests/test_calendar.py",
    "tests/test_calendar_contract.py", "tests/test_working_time.py", "tests/test_sla.py",
    "tests/test_machine.py", "tests/test_machine_contract.py"]
also_copy = ["tests", "workflows"]
# no warm fork server: one that imported the tests holds calendars built at import (cached
# by calendar_for), and mutants of the code that built them would never run
forkserver_warmup = "none"
EOF
    selection=()
    ;;
service)
    cat >>pyproject.toml <<'EOF'

[tool.mutmut]
source_paths = ["engine"]
only_mutate = ["engine/service/cases.py", "engine/service/reports.py",
               "engine/service/queries.py", "engine/service/timers.py"]
pytest_add_cli_args_test_selection = ["tests/integration/test_timers.py",
    "tests/integration/test_reports.py"]
also_copy = ["tests", "workflows"]
EOF
    # the payment comparison, the authorization of reports and trail, and the sweep loop
    # with its unique firings; the rest of these modules is not mutated (in timers.py not
    # the wording of notifications and webhook payloads)
    selection=(
        "engine.service.cases.x_expected_payment*"
        "engine.service.reports.x_may_read_reports*"
        "engine.service.queries.x_may_read_trail*"
        "engine.service.timers.x_sweep__*"
        "engine.service.timers.x__sweep_batch*"
        "engine.service.timers.x__claim_firings*"
    )
    export SOPFLOW_TEST_SERVICES=required
    ;;
*)
    echo "usage: $0 domain|service [DIR]" >&2
    exit 2
    ;;
esac

# Only in-process tests: a test that starts a server process would run the installed work
# tree, not the mutants (mutmut switches mutants inside the test process).
"$mutmut" run --max-children 2 "${selection[@]}" >mutmut-run.log 2>&1 || true
"$mutmut" results --all true >mutmut-results.txt 2>&1 || "$mutmut" results >mutmut-results.txt
grep -o ': [a-z ]*$' mutmut-results.txt | sort | uniq -c
echo "results: $dir/mutmut-results.txt"
