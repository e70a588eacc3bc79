#!/usr/bin/env bash
# The design's walkthrough, for real: sets up what is missing (the Docker engine from the
# distribution's packages, started if not running; e; the example images), then runs the
# modules in a fresh shared directory, printing the state after each step.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source tests/engine.sh
modules/build-contexts.sh >/dev/null
cargo build --release --locked --quiet
e="$PWD/target/release/e"
export E_REPOSITORY="$PWD/repository.yaml"
for module in azi bmk bmm k8s rook nfs pg; do "$e" build "modules/$module" 2>/dev/null; done

export E_SHARED="${E_SHARED:-$(mktemp -d)/shared}"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show_state() { printf -- '-- %s/state.yml\n' "$E_SHARED"; "$e" state; }
run() { printf '$ e %s\n' "$*"; "$e" "$@" || printf '(exit %s)\n' "$?"; }

step "1. azi: an Azure infrastructure mock with 5 nodes (apply shows its plan first; --auto-approve answers yes)"
run init azi
run apply --auto-approve azi
show_state

step "2. a node's IPs edited by hand (10.0.0.1 -> 10.0.0.100)"
sed -i 's/privateIP: 10.0.0.1$/privateIP: 10.0.0.100/; s/publicIP: 213.1.1.1$/publicIP: 213.1.1.100/' "$E_SHARED/state.yml"
show_state

step "3. bmk (BareMetalKafka) init: a config of 3 nodes taken from the state"
run search --for bmk
run init bmk
printf -- '-- %s/bmk-config.yml\n' "$E_SHARED"; cat "$E_SHARED/bmk-config.yml"

plan="$(dirname "$E_SHARED")/bmk.plan"
step "4. bmk plan: what apply would change, saved for review"
run plan bmk --out "$plan"
run show "$plan"

step "5. bmk apply of the saved plan: nodes marked usedBy: bmk, Kafka recorded as created"
run apply "$plan"
show_state

step "6. audit: azi finds the hand change it does not know (non-zero exit)"
run audit azi

step "7. bmm (monitoring): influenced by bmk, it plans to watch the Kafka nodes"
run init bmm
run plan bmm
run apply --auto-approve bmm
show_state

step "8. the design's flow: PostgreSQL needs persistence, which needs Kubernetes"
run apply pg
run search 'kind=persistence'
# k8s needs 3 free nodes and bmk uses 3 of azi's 5: grow azi first (it keeps the nodes it has).
run init azi -- --size 8
run apply --auto-approve azi
run apply pg --with-requirements --auto-approve --prefer rook
show_state

step "9. what e recorded: pg is bound to rook, so rook cannot be destroyed under it"
run status
run destroy --auto-approve rook
run graph --installed
run history
printf '\nshared directory: %s\n' "$E_SHARED"
