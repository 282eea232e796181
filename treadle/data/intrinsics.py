"""Machine operations numba does not offer: an unaligned eight-byte load and a byte swap.

The compiled scans use them to read a short value in one step instead of a
byte at a time.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def load8(typingctx, arr, index):
    """arr[index:index + 8] of a uint8 array as a little-endian uint64; the caller checks the bounds."""
    sig = types.uint64(arr, types.int64)

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, value=args[0])
        at = builder.gep(array.data, [args[1]])
        return builder.load(builder.bitcast(at, ir.IntType(64).as_pointer()), align=1)

    return sig, codegen


@intrinsic
def bswap64(typingctx, x):
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.bswap(args[0])

    return sig, codegen
