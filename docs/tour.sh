#!/bin/sh
# The README's tour ("A short tour" -> "Running cases" and "Watching an escalation fire"),
# as one script. Run it from the repository folder while `sopflow serve` runs there on a
# fresh database (the README's first command); API names another address.
# tests/integration/test_tour.py runs it against a real server, and checks that each
# command block the README marks as the tour's appears here word for word.
set -eu

.venv/bin/sopflow sop publish workflows/ >/dev/null

API=${API:-http://localhost:8000}                 # where `sopflow serve` listens
new_user() { .venv/bin/sopflow user add "$@" | tail -n 1; }   # prints the token alone
SARI=$(new_user sari --opd dispendukcapil --roles loket,operator)
KASI=$(new_user kasi-dukcapil --opd dispendukcapil --roles kasi)
CETAK=$(new_user cetak-dukcapil --opd dispendukcapil --roles operator_cetak)
ADMIN=$(new_user admin-dukcapil --opd dispendukcapil --admin)
INSPEKTUR=$(new_user inspektur --inspector)

field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }  # one JSON value
CASE=$(curl -sf -X POST $API/api/v1/cases -H "Authorization: Bearer $SARI" \
  -H 'Content-Type: application/json' \
  -d '{"sop": "ktp-el", "fields": {"nik": "3201234567890001", "nama": "Budi Santoso",
       "jenis_permohonan": "baru"}, "received": ["kk"]}' | field '["id"]')
curl -sf -X POST $API/api/v1/cases/$CASE/transitions -H "Authorization: Bearer $SARI" \
  -H 'Content-Type: application/json' -H 'If-Match: "1"' -d '{"name": "terima"}' | field '["step"]'

fire() {  # fire TOKEN TRANSITION on $CASE; prints the step it reaches
  curl -sf -X POST $API/api/v1/cases/$CASE/transitions -H "Authorization: Bearer $1" \
    -H 'Content-Type: application/json' -d "{\"name\": \"$2\"}" | field '["step"]'
}
fire "$SARI" rekam; fire "$SARI" siap_cetak; fire "$KASI" setujui
fire "$CETAK" cetak; fire "$SARI" serahkan       # selesai: the case is closed
curl -sf $API/api/v1/cases/$CASE -H "Authorization: Bearer $SARI" | field '["status"]'

.venv/bin/sopflow sop publish docs/examples/surat-kilat.yaml
FAST=$(curl -sf -X POST $API/api/v1/cases -H "Authorization: Bearer $SARI" \
  -H 'Content-Type: application/json' \
  -d '{"sop": "surat-kilat", "fields": {"nama": "Siti"}, "received": ["ktp"]}' | field '["id"]')
level() { curl -sf $API/api/v1/cases/$FAST -H "Authorization: Bearer $KASI" | field "$1"; }
tries=0
until [ "$(level '["escalation_level"]')" != 0 ]; do   # 4 s standard: warned at 2 s, then
  tries=$((tries + 1)); [ $tries -lt 120 ] || exit 1; sleep 1   # escalated to the kasi
done
curl -sf $API/api/v1/cases/$FAST/history -H "Authorization: Bearer $KASI" \
  | python3 -c "import json, sys; print(*[e['type'] for e in json.load(sys.stdin)['items']])"

curl -sf "$API/api/v1/reports/bottlenecks?sop=ktp-el" -H "Authorization: Bearer $INSPEKTUR"
curl -sf "$API/api/v1/reports/anomalies" -H "Authorization: Bearer $ADMIN"
curl -sf "$API/api/v1/audit/verify" -H "Authorization: Bearer $INSPEKTUR"
