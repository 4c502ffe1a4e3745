#!/usr/bin/env bash
# examples/mfa-verify.sh USER [sms|voice|app|tap]: an application's second-factor check against
# Converge's REST API, after the application has checked the user's password itself.
#
#   converge api-token create intranet --scopes mfa:verify --expires 90d   # prints the token once
#   CONVERGE_URL=https://mfa.example.org CONVERGE_TOKEN=cvg_… examples/mfa-verify.sh alice
#
# Needs curl and python3 (to read the JSON answers). Exit status 0: verified.
set -euo pipefail
user="${1:?usage: $0 USER [sms|voice|app|tap]}"
delivery="${2:-}"
url="${CONVERGE_URL:-http://localhost:3000}"
token="${CONVERGE_TOKEN:?set CONVERGE_TOKEN (converge api-token create NAME --scopes mfa:verify)}"

api() { # METHOD PATH [JSON]
  curl -sS -X "$1" "$url/api/v1$2" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' ${3:+--data "$3"}
}
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get(sys.argv[1]) or "")' "$1"; }
quote() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }

body="{\"user\": $(quote "$user")${delivery:+, \"delivery\": \"$delivery\"}}"
challenge="$(api POST /mfa/challenges "$body")"
id="$(field id <<<"$challenge")"
if [ -z "$id" ]; then
  echo "refused: $(field code <<<"$challenge") $(field detail <<<"$challenge")" >&2
  exit 2
fi
how="$(field delivery <<<"$challenge")"
case "$how" in
  voice)
    echo "Calling $(field sent_to <<<"$challenge"): answer and approve on the phone…"
    for _ in 1 2 3 4 5 6; do
      result="$(api GET "/mfa/challenges/$id?wait=20" | field result)"
      [ "$result" != pending ] && break
    done ;;
  *)
    case "$how" in
      sms) prompt="Code sent to $(field sent_to <<<"$challenge"): " ;;
      tap) prompt="Temporary Access Pass: " ;;
      *)   prompt="Code from your authenticator app: " ;;
    esac
    for _ in 1 2 3; do
      read -r -p "$prompt" code
      result="$(api POST "/mfa/challenges/$id/verify" "{\"code\": $(quote "$code")}" | field result)"
      [ "$result" = wrong ] || break
      echo "That code is not right; try again."
    done ;;
esac
echo "result: ${result:-error}"
[ "$result" = verified ]
