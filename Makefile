# The two commands of the README: `make book` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Progress bars and live widgets are for people at a notebook; they only clutter the rendered
# pages and logs (and a widget can stall a notebook client: mi_lib.widgets.t_slider).
RUN_ENV := TQDM_DISABLE=1 MI_WIDGETS=0
# nbmake skips any path with a _build folder in it, so the executed copies live apart.
EXECUTED := .executed

.PHONY: setup book test unit notebooks book-executed book-student site-check lint colab-check lab gpu-job clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

## Build the book strictly, executing every chapter.
book: $(STAMP)
	$(RUN_ENV) $(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is at $(CURDIR)/_build/html/index.html"

## Unit tests and every chapter under nbmake, on both cores. The chapters run from a copy
## in $(EXECUTED), which keeps their outputs, so that `make book-executed` can build the
## book from them without executing anything twice.
test: $(STAMP)
	rm -rf $(EXECUTED) && mkdir -p $(EXECUTED)
	# _static holds the pages' CSS (code type sized so that 79 characters fit the column).
	cp -r _config.yml _toc.yml _static book $(EXECUTED)/
	# Two workers on two cores: one thread each, or their OpenMP threads spin against each
	# other (a chapter once took 10x longer that way).
	$(RUN_ENV) OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadgroup --durations=8 tests $(EXECUTED)/book --nbmake --overwrite

## The strict book build from the chapters that `make test` executed.
book-executed: $(STAMP)
	@$(BIN)/python -c "import glob, json, sys; \
	nbs = glob.glob('$(EXECUTED)/book/*.ipynb'); \
	bad = [p for p in nbs if not any(c.get('outputs') for c in json.load(open(p))['cells'])]; \
	sys.exit(f'run make test first: no executed chapters in $(EXECUTED)' if not nbs else f'not executed: {bad}' if bad else 0)"
	sed -i 's/^\(  *execute_notebooks:\).*/\1 "off"/' $(EXECUTED)/_config.yml
	$(RUN_ENV) $(BIN)/jupyter-book build $(EXECUTED) -W -n --keep-going
	@echo "The book is at $(CURDIR)/$(EXECUTED)/_build/html/index.html"

## The book without its solutions, for a class, from the same sources: the site in
## $(STUDENT)/_build/html and the notebooks to hand out in $(STUDENT)/book. Chapters executed
## already (STUDENT_FROM=$(EXECUTED)/book after `make test`) keep their outputs and nothing runs
## again. STUDENT_REPO: a repository holding those notebooks, for the Colab and Binder buttons.
STUDENT ?= _student
STUDENT_FROM ?= book
STUDENT_REPO ?=
book-student: $(STAMP)
	$(BIN)/python -m mi_lib.teaching site $(STUDENT) --chapters $(STUDENT_FROM) $(if $(STUDENT_REPO),--repository $(STUDENT_REPO))
	$(RUN_ENV) $(BIN)/jupyter-book build $(STUDENT) -W -n --keep-going
	@echo "The student edition is at $(CURDIR)/$(STUDENT)/_build/html/index.html; its notebooks are in $(STUDENT)/book"

## Open every page of the built book in headless Chromium and check what a reader sees
## (screenshots in _build/site-check/). SITE is the built HTML: make book's by default.
SITE ?= _build/html
site-check: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_site.py --site $(SITE)

lint: $(STAMP)
	$(BIN)/ruff check mi_lib tests $(wildcard benchmarks)

## The Colab path end to end (slow, so not part of `make test`): mi_lib's wheel installed in a
## fresh venv beside Colab-like torch and ipywidgets 7.x, which it must leave alone, then a
## chapter that uses the widget helper run from that install.
colab-check: $(STAMP)
	$(BIN)/python -m pytest -m slow --durations=1 tests/test_colab_install.py

## JupyterLab on the chapters. Lab is for people at a notebook: the builds and CI never need it,
## so it is installed here on first use instead of in requirements.txt.
## Extra options go in LAB_ARGS (make lab LAB_ARGS="--no-browser --port 8889"); as root (a
## container) the server also needs --allow-root.
JUPYTERLAB := jupyterlab>=4.2,<5
LAB_ARGS ?=
lab: $(STAMP)
	@$(BIN)/python -c "import jupyterlab" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(JUPYTERLAB)"
	$(BIN)/python -m jupyterlab book/ $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

## The GPU job (benchmarks/gpu_job.py) on a machine with a CUDA GPU: CUDA tests, the device
## benchmark and the image models in their time boxes, into OUT, in MINUTES of wall clock. It runs
## with that machine's own Python (GPU_PYTHON), whose torch has CUDA; .venv's torch is a CPU build.
GPU_PYTHON ?= python3
OUT ?= gpu-job-out
MINUTES ?= 9
gpu-job:
	PYTHONPATH=$(CURDIR) $(GPU_PYTHON) benchmarks/gpu_job.py $(OUT) --minutes $(MINUTES)

clean:
	rm -rf _build $(EXECUTED) $(STUDENT) $(VENV)
