"""A command-line worker: standard library only, runs until stopped."""

import time

while True:
    print("working", flush=True)
    time.sleep(5)
