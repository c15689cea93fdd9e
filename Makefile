# Thin aliases for ./dev, which owns the setup.
.PHONY: serve test check bench
serve:
	./dev serve
test:
	./dev test
check:
	./dev check
bench:
	./dev bench
