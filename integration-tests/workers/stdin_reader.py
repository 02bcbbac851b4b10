"""A child that reads its stdin as interactive tools do (ffmpeg polls it for keyboard commands).

Run by the ``childStdin`` tests (integration-tests/test_foreign_parent.py, workers-node's
stdio-descriptors test) through a worker that lets it inherit its stdin: for the seconds given as
its argument, it waits until descriptor 0 is readable and reads; at end of file it stops. It prints
how many bytes it read: 0 when the worker's SDK put /dev/null on descriptor 0 (PROTOCOL.md 1.5).
"""

import os
import select
import sys
import time

end, taken = time.monotonic() + float(sys.argv[1]), 0
while (left := end - time.monotonic()) > 0:
    if select.select([0], [], [], left)[0]:
        try:
            data = os.read(0, 65536)
        except BlockingIOError:  # the worker read it first
            continue
        if not data:
            break
        taken += len(data)
print(taken)
