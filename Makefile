# Two commands do everything:  `make course` (run every notebook)  and  `make test`.
PYTHON     ?= python3
VENV       ?= .venv
PY         := $(VENV)/bin/python
PROFILE    ?= quick
# torch is installed first and pinned: an unpinned `pip install torch` may pull a
# newer build with several GB of CUDA libraries where a CPU build was wanted.
TORCH_SPEC ?= torch==2.13.0
# torchvision's release for that torch (MNIST for notebooks 05 and 06). Where its compiled ops
# cannot load beside the installed torch build, the MNIST loader says so once and falls back to
# scikit-learn's digits.
TORCHVISION_SPEC ?= torchvision==0.28.0
STAMP      := $(VENV)/.installed

.PHONY: course test test-all test-browser lab lint notebooks check-notebooks bench clean help

help:
	@echo "make course   run every notebook headless (PROFILE=smoke|quick|full, default quick); results in runs/"
	@echo "make test     unit tests + nbval over every notebook in the smoke profile"
	@echo "make lab      copy the student notebooks to work/ (once) and open JupyterLab there"
	@echo "make notebooks  rebuild notebooks/ and solutions/*.ipynb from solutions/*.py"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q "$(TORCHVISION_SPEC)" "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[notebooks,dev,vision]"
	touch $(STAMP)

course: $(STAMP)
	$(PY) -m course_lib run --profile $(PROFILE)

# The linter first (a second), then the tests.
test: $(STAMP) lint
	COURSE_PROFILE=smoke MPLBACKEND=Agg $(PY) -m pytest tests notebooks solutions --nbval-lax -p no:cacheprovider

test-all: $(STAMP)
	COURSE_PROFILE=smoke MPLBACKEND=Agg $(PY) -m pytest tests notebooks solutions --nbval-lax -p no:cacheprovider -m "not browser"

# Needs Debian's Chromium (apt-get install chromium); Playwright drives it, no browser download.
test-browser: $(STAMP)
	$(PY) -m pip install -q -e ".[browser]"
	@test -x /usr/bin/chromium || echo "test-browser: /usr/bin/chromium is missing; install it with: apt-get install -y chromium"
	$(PY) -m pytest tests -m browser -p no:cacheprovider

# The student notebooks are copied once into $(WORK)/ (git-ignored) and opened there: notebooks/
# is generated (`make notebooks`, `git pull` rewrite it), $(WORK)/ is yours. An existing copy is
# never overwritten; delete it to start that notebook over.
WORK       ?= work
lab: $(STAMP)
	@mkdir -p $(WORK)
	@for nb in notebooks/*.ipynb; do test -e "$(WORK)/$$(basename $$nb)" || { cp "$$nb" $(WORK)/ && echo "copied $$nb to $(WORK)/"; }; done
	$(VENV)/bin/jupyter lab $(WORK)/

notebooks: $(STAMP)
	$(PY) -m course_lib build

check-notebooks: $(STAMP)
	$(PY) -m course_lib build --check

# ruff, configured in pyproject.toml ([tool.ruff]): pyflakes, pycodestyle, import order, bugbear.
lint: $(STAMP)
	$(PY) -m ruff check .

# Every benchmark of the README with its defaults, one after another (the MIG one encodes all
# 737,280 dSprites images: minutes on a CPU).
BENCHES := render train speed multiseed mig unroll

bench: $(STAMP)
	for what in $(BENCHES); do $(PY) -m course_lib bench $$what || exit 1; done

clean:
	rm -rf runs .pytest_cache

# The course as a website: runs/site/html/ (open index.html). Reuses the executed notebooks of
# runs/$(PROFILE)/ that are fresh and runs the others; PROFILE=smoke for a quick check.
SITE_STAMP := $(VENV)/.site-installed

.PHONY: site test-site

$(SITE_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e ".[site]"
	touch $(SITE_STAMP)

site: $(SITE_STAMP)
	$(PY) -m course_lib site --profile $(PROFILE)

# The site in a real browser (Debian's Chromium driven by Playwright); builds the site first
# (profile smoke) when runs/site/html/ has none. Also part of `make test-browser`.
test-site: $(SITE_STAMP)
	$(PY) -m pip install -q -e ".[browser]"
	@test -x /usr/bin/chromium || echo "test-site: /usr/bin/chromium is missing; install it with: apt-get install -y chromium"
	$(PY) -m pytest tests/test_site_browser.py -m browser -p no:cacheprovider

# Serve the built site on http://127.0.0.1:8000/ (Ctrl-C stops it).
.PHONY: serve-site
serve-site:
	$(PY) -m http.server --bind 127.0.0.1 --directory runs/site/html 8000
