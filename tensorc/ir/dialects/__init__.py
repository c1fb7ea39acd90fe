"""The IR's dialects: `func` (functions, calls, returns), `tc` (tensor ops at the language's
level) and `kernel` (fused loop nests). Importing this package registers every op."""

from tensorc.ir.dialects import func, kernel, tc, tc_reduce, tc_shape  # noqa: F401
