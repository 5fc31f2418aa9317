# make test          the whole suite (hack/test.sh: vet, gofmt, go test -race, 5 s per fuzz target)
# make fuzz          every fuzz target for FUZZTIME (default 1m), one after another
# make fuzz FUZZTIME=10s
FUZZTIME ?= 1m

.PHONY: test fuzz

test:
	./hack/test.sh

fuzz:
	@set -e; for pkg in $$(go list ./...); do \
	  dir=$$(go list -f '{{.Dir}}' $$pkg); \
	  for target in $$(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' $$dir/*_test.go 2>/dev/null | awk '{print $$2}' | sort -u); do \
	    echo "==> $$pkg $$target ($(FUZZTIME))"; \
	    go test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done
