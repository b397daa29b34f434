"""Writes N distinct copies of a component and a routes.toml that mounts each on its own route.

    python3 bench/tenants.py COMPONENT N OUT_DIR [--same]

Each copy is the component with one custom section appended (name `cheroot-bench-tenant`, its
number as content): the same code, different bytes, so nothing keyed by content can share it;
that is what 1,000 tenants who each built the same app look like. With `--same` every route
names the one original file instead. Routes are /t0000, /t0001, ... in OUT_DIR/routes.toml.
"""

import pathlib
import sys


def leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def custom_section(name: str, content: bytes) -> bytes:
    payload = leb128(len(name)) + name.encode() + content
    return b"\x00" + leb128(len(payload)) + payload


def main() -> None:
    component, n, out = pathlib.Path(sys.argv[1]), int(sys.argv[2]), pathlib.Path(sys.argv[3])
    same = "--same" in sys.argv[4:]
    original = component.read_bytes()
    out.mkdir(parents=True, exist_ok=True)
    routes = []
    for i in range(n):
        if same:
            path = component.resolve()
        else:
            path = (out / f"tenant{i:04}.wasm").resolve()
            path.write_bytes(original + custom_section("cheroot-bench-tenant", str(i).encode()))
        routes.append(f'[[route]]\npath = "/t{i:04}"\ncomponent = "{path}"\n')
    (out / "routes.toml").write_text("\n".join(routes))


if __name__ == "__main__":
    main()
