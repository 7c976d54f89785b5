"""Programs in no promised order: the interpreter runs a launch's programs last to first.

A GPU runs a launch's programs side by side, in an order it does not promise; Triton's interpreter runs them one
at a time, first to last. A kernel whose programs meet (one reads what others of the launch stored, once a counter
says they are done) would be checked on CPU in that order only, in which the program that counts last is always
the one of the highest id. Here each launch runs its programs last to first, every axis reversed, so that an order
the kernel relied on fails on CPU too. The programs' ids are the reversed ones (``tl.program_id``, the bounds checker's
reports); which program computes what is unchanged.
"""


def install() -> None:
    """Idempotent."""
    from triton.runtime import interpreter as interp

    builder = interp.InterpreterBuilder
    if getattr(builder.set_grid_idx, "_reversed", False):
        return
    set_idx = builder.set_grid_idx

    def reversed_idx(self, x, y, z):
        nx, ny, nz = self.grid_dim
        set_idx(self, nx - 1 - x, ny - 1 - y, nz - 1 - z)

    reversed_idx._reversed = True
    builder.set_grid_idx = reversed_idx
