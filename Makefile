# The README's two commands: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SAMPLE = $(shell $(BIN)/python -c "import skimage, pathlib; print(pathlib.Path(skimage.__file__).parent / 'data' / 'astronaut.png')")

.PHONY: install demo test lint typecheck clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

install: $(STAMP)

# A 128x128 copy of the astronaut photo upscaled x4 by the `natural` model and by bicubic.
demo: $(STAMP)
	mkdir -p out
	$(BIN)/srgan downscale "$(SAMPLE)" out/astronaut_small.png --scale 4
	$(BIN)/srgan -v upscale out/astronaut_small.png out/astronaut_x4.png
	$(BIN)/srgan upscale out/astronaut_small.png out/astronaut_x4_bicubic.png --model bicubic
	@echo "demo: compare out/astronaut_x4.png (natural) with out/astronaut_x4_bicubic.png"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# pyright in basic mode over src/ (pyproject.toml's [tool.pyright]; typings/ holds stubs
# for compiled modules that ship none).
typecheck: $(STAMP)
	$(BIN)/pyright

test: lint typecheck
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
