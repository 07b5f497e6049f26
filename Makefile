# Everything a person repeats. CI (.ci/run) calls the same targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c

# The control-plane binaries (kube-apiserver, etcd, kube-controller-manager,
# kubectl, helm). An existing envtest folder in KUBEBUILDER_ASSETS is used as is.
TESTENV = $(if $(KUBEBUILDER_ASSETS),$(KUBEBUILDER_ASSETS),$(shell hack/controlplane/build.sh))

.PHONY: help demo test testenv lint fmt crds argocd-cm bench bench-reduced chaos chaos-reduced

help:
	@echo "make demo     run the operator end to end on a local control plane"
	@echo "make test     build the test bed if needed, then run every test"
	@echo "make crds     regenerate crds/ from the Rust types"
	@echo "make bench    full-size benchmarks, written to docs/benchmarks.md (bench-reduced: a quick run)"
	@echo "make chaos    full-size chaos suite, written to docs/benchmarks.md (chaos-reduced: a quick run)"
	@echo "make testenv  build the control-plane binaries and print their folder"
	@echo "make lint     cargo fmt --check, clippy -D warnings, gofmt, hadolint"

demo:
	@hack/demo.sh

crds:
	cargo run --quiet --bin iwd-operator -- crd > crds/iwd.cxops.io_iwdtenants.yaml
	cp crds/iwd.cxops.io_iwdtenants.yaml charts/iwd-operator/files/

bench:
	hack/bench.sh

bench-reduced:
	hack/bench.sh --reduced

chaos:
	hack/chaos.sh

chaos-reduced:
	hack/chaos.sh --reduced

argocd-cm:
	hack/argocd-cm.sh

testenv:
	@hack/controlplane/build.sh

test:
	@assets="$(TESTENV)"; test -x "$$assets/kube-apiserver" || { echo "no control plane in '$$assets'" >&2; exit 1; }; \
	echo "control plane binaries: $$assets"; \
	KUBEBUILDER_ASSETS="$$assets" cargo test --workspace

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	test -z "$$(gofmt -l hack)" || { gofmt -l hack; exit 1; }
	hadolint Dockerfile

fmt:
	cargo fmt --all
	gofmt -w hack
