#!/bin/sh
# A memory-bandwidth stressor: stress-ng's vm stressor walking 192 MiB with 64-bit writes
# (write64), one worker, for 20 s of the guest's clock.
stress-ng --vm 1 --vm-bytes 192M --vm-method write64 --vm-keep --timeout 20s --metrics-brief
