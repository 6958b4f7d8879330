"""Open feasibility reports in a real browser (headless Chromium) and screenshot them.

    .venv/bin/python scripts/check_report_in_browser.py [CHECKPOINT [report options...]]

Writes out/browser/<name>.html and .png for the bundled model (and for CHECKPOINT when given, e.g. a
Spikformer-8-768 with --num-heads 12) and checks each screenshot: the page rendered (not blank), the verdict box's
colour is there, and the page is taller than one screen (tables and plots laid out). Needs Debian's `chromium`
(apt-get install chromium); too slow for the test suite, which checks the HTML itself (tests/analysis).
"""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path("out/browser")
VERDICT_COLOURS = {(0xe8, 0xf6, 0xec), (0xff, 0xf6, 0xe0), (0xfd, 0xea, 0xea)}  # fits / changes / does not fit


def render(name: str, args: list[str]) -> Path:
    html = OUT / f"{name}.html"
    subprocess.run([sys.executable, "-m", "spikformer_deploy.cli", "report", *args, "--format", "html", "-o",
                    str(html)], check=True)
    return html


def screenshot(html: Path) -> Path:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("error: chromium not found (apt-get install chromium)")
    png = html.with_suffix(".png")
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1200,4000", f"--screenshot={png.resolve()}", html.resolve().as_uri()],
                   check=True, capture_output=True)
    pixels = np.asarray(Image.open(png).convert("RGB"))
    colours = {tuple(c) for c in pixels[::8, ::8].reshape(-1, 3)}
    problems = [msg for bad, msg in ((pixels.std() < 5, "blank page"),
                                     (not VERDICT_COLOURS & colours, "no verdict box"))
                if bad]
    print(f"{png}: {pixels.shape[1]}x{pixels.shape[0]}, {len(colours)} colours"
          + (f" — {', '.join(problems)}" if problems else " — ok"))
    return png if not problems else sys.exit(1)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    screenshot(render("bundled", []))
    if len(sys.argv) > 1:
        screenshot(render(Path(sys.argv[1]).stem, sys.argv[1:]))


if __name__ == "__main__":
    main()
