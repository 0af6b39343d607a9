"""Write the README's pictures of the viewer: ``xvfb-run -s "-screen 0 1600x1000x24"
python tests/viewer_shots.py docs/``.

Runs the session of `test_viewer_canvas` (the demo's graphs) in English and Russian and
keeps four of its screenshots, reduced to a 64-colour palette so that they stay small:
the collapsed model, a block expanded by a click, the inspector on a parameter, and
the Russian interface.
"""

from __future__ import annotations

import os
import sys
import tempfile

from PIL import Image
from test_viewer_canvas import run_session

#: (language, screenshot of the session, file written).
SHOTS = (
    ("en", "collapsed.png", "viewer-canvas.png"),
    ("en", "expanded.png", "viewer-canvas-expanded.png"),
    ("en", "inspector.png", "viewer-canvas-inspector.png"),
    ("ru", "collapsed.png", "viewer-canvas-ru.png"),
)


def main(folder: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for lang in ("en", "ru"):
            os.makedirs(os.path.join(tmp, lang))
            run_session(os.path.join(tmp, lang), lang)
        for lang, shot, name in SHOTS:
            image = Image.open(os.path.join(tmp, lang, shot)).convert("RGB")
            small = image.quantize(colors=64, method=Image.Quantize.MEDIANCUT)
            path = os.path.join(folder, name)
            small.save(path, optimize=True)
            print(f"{path}: {image.size[0]}x{image.size[1]}, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs")
