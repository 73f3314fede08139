"""One run's passes: calibrate, accuracy, performance, find-peak, the checks that follow, a
``--repeat`` series, and the runner that sequences them and writes the result."""
