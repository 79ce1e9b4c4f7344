# The README's two commands: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SAMPLE = $(shell $(BIN)/python -c "import skimage, pathlib; print(pathlib.Path(skimage.__file__).parent / 'data' / 'astronaut.png')")

.PHONY: install demo test lint clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/srgan -v upscale "$(SAMPLE)" out/astronaut_x4.png --model bicubic --scale 4
	$(BIN)/srgan psnr out/astronaut_x4.png out/astronaut_x4.png --json > /dev/null
	@echo "demo: wrote out/astronaut_x4.png"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
