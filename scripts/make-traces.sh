#!/bin/sh
# Regenerates the bundled trace library in traces/ (see traces/README.md). Deterministic: the same
# commands give byte-identical files. Run `npm run build` first.
set -eu
cd "$(dirname "$0")/.."
gen() { node bin/run.js generate "$@"; }
MIG='max-bandwidth=134217728;downtime-limit=300'

gen idle --memory 512M --vcpus 2 --duration 6s --populated 0.5 --seed 1 \
  --migrate-at 100ms --mig-params "$MIG" --out traces/idle.csv.gz
gen hotset --memory 1G --vcpus 2 --duration 10s --rate 5500 --param hotSize=16M --param hotShare=0.9 --seed 2 \
  --migrate-at 100ms --mig-params "$MIG" --out traces/converging.csv.gz
gen hotset --memory 256M --vcpus 4 --duration 8s --rate 50000 --param hotSize=128M --param hotShare=1 --seed 3 \
  --migrate-at 100ms --mig-params "$MIG" --out traces/hotset-nonconverging.csv.gz
gen --spec traces/specs/vfio-passthrough.json --out traces/vfio-passthrough.csv.gz
gen --spec traces/specs/virtio-mem.json --out traces/virtio-mem.csv.gz
gen --spec traces/specs/malicious.json --out traces/malicious.csv.gz
gen --spec traces/specs/postcopy-large.json --out traces/postcopy-large.csv.gz
