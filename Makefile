.PHONY: run test lint bench demo docs
run:
	./scripts/serve
test:
	./scripts/test
lint:
	./scripts/lint
bench:
	./scripts/bootstrap && .venv/bin/python bench/run_all.py --quick
demo:
	./scripts/bootstrap && .venv/bin/pitbox demo
docs:
	.venv/bin/pitbox config docs && .venv/bin/pitbox db init-sql > db-init.sql
