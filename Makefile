# Two commands for a new user: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
# Extra pip requirements, e.g. DJANGO="Django>=6.1,<6.2" WAGTAIL="wagtail>=7.4,<7.5".
DJANGO ?=
WAGTAIL ?=
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo demo-learn test docs install install-test tracker bench bench-instructions bench-collect bench-cluster bench-rank bench-rollups bench-lift clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[demo]" $(if $(DJANGO),"$(DJANGO)") $(if $(WAGTAIL),"$(WAGTAIL)")

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]" $(if $(DJANGO),"$(DJANGO)") $(if $(WAGTAIL),"$(WAGTAIL)")

demo: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# Synthetic visitors browse the demo (through the real collect endpoint), then the nightly jobs
# run once, so the demo has named clusters and an engagement model; then a day of new visitors
# (placed in those clusters as they arrive), so Reports → Personalization has figures by cluster
# as well as by rule segment. Then `make demo` serves it.
VISITORS ?= 300
VISITORS_AFTER ?= 100
demo-learn: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo
	$(BIN)/python manage.py simulate_traffic --visitors $(VISITORS)
	$(BIN)/python manage.py microadjust_recluster
	$(BIN)/python manage.py microadjust_train
	$(BIN)/python manage.py simulate_traffic --visitors $(VISITORS_AFTER) --days 1 --seed 5
	$(BIN)/python manage.py microadjust_rollup

test: install-test
	$(BIN)/python -m ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=project.settings.test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The documentation site (MkDocs, warnings are errors): the configuration and signal references
# are generated from defaults.py and the signal registry. Open $(DOCS_SITE)/index.html.
DOCS_SITE ?= site
docs: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[docs]" $(if $(DJANGO),"$(DJANGO)") $(if $(WAGTAIL),"$(WAGTAIL)")
	$(BIN)/mkdocs build --strict --site-dir $(DOCS_SITE)

# tracker.js is shipped minified; edit microadjust_cms/static_src/tracker.js, then run this.
tracker: install-test
	$(BIN)/python -m microadjust_cms.build_tracker

bench: install-test
	$(BIN)/python bench/render.py

bench-instructions: install-test
	$(BIN)/python bench/render_instructions.py

bench-collect: install-test
	$(BIN)/python bench/collect.py

bench-cluster: install-test
	$(BIN)/python bench/cluster.py

bench-rank: install-test
	$(BIN)/python bench/rank.py

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache

.PHONY: bench-decide
# One experiment assignment + block decision against django-waffle's flag_is_active.
bench-decide: install-test
	$(BIN)/python bench/decide.py

bench-rollups: install-test
	$(BIN)/python bench/rollups.py

# The closed-loop lift test (issue 16): five arms over the same seeded population, 7 simulated days.
bench-lift: install-test
	$(BIN)/python bench/lift.py
