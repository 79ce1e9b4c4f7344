# The ncnn wheel ships a compiled module without type information: every name is Any.
from typing import Any

def __getattr__(name: str) -> Any: ...
