# The two commands of the README's quick start. Each installs what it needs first.
.PHONY: demo test deps build

deps:
	@scripts/install-deps

build: deps
	swift build

# Runs the demo mesh and opens the dashboard on it (q quits).
demo: build
	.build/debug/meshtop demo

# Builds everything (the end-to-end tests run the built binaries), runs every test, then
# meshproxy against peers nobody here wrote (scripts/peer-tests: nginx, grpcio, websockets,
# h2load), then a 60-second soak of two chained meshproxies under faults (scripts/soak).
# First the module layering rules (scripts/module-graph), which take no time.
# Tests run one at a time: several start whole meshes, a load or a Prometheus on this 2-core
# machine and judge latency or balancing, which other tests running beside them would skew.
test: deps
	scripts/module-graph
	swift build --build-tests
	swift test --no-parallel
	scripts/peer-tests
	scripts/soak 60 300
