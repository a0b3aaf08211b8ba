#!/bin/sh
# A compile job: make builds the C sources shipped in /workloads/src (migtrace's recording plugin,
# the lab's dirtier and the record test's tiny guest) at -O0, -O2 and -Os, one compiler at a time.
cp -r /workloads/src /tmp/build
cd /tmp/build
make -j1 all
ls -l out
