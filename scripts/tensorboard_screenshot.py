"""Screenshots of TensorBoard, for the README: `python scripts/tensorboard_screenshot.py`.

Trains the README's main job (`python train.py model=cnn trainer.max_epochs=5`) into a temporary
folder (or takes `--logdir`), starts `tensorboard --logdir` on it, opens each tab in a headless
Chromium driven by Selenium (it waits for the charts to be drawn, which `chromium --screenshot`
does not) and writes docs/images/tensorboard_<tab>.png.

Needs a browser and its driver, which the project does not depend on:
    apt-get install -y chromium chromium-driver      (Debian; or any Chrome + chromedriver)
    pip install -e ".[docs]"                          (selenium)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# tab -> (URL after the server's address, window width, height); smoothing 0: a 5-epoch run has
# few points, and TensorBoard's default smoothing (0.6) lags them (see the README)
TABS = {
    "timeseries": ("/?smoothing=0#timeseries", 1600, 3000),
    "custom_scalars": ("/#custom_scalars&_smoothingWeight=0", 1600, 1000),
    "hparams": ("/#hparams", 2400, 500),
    "images": ("/#images", 1200, 900),
}

UNCHECK_IGNORE_OUTLIERS = """
const seen = [];
(function walk(root) {
  for (const el of root.querySelectorAll('*')) {
    const box = el.tagName === 'PAPER-CHECKBOX';
    if (box && el.textContent.includes('Ignore outliers')) seen.push(el);
    if (el.shadowRoot) walk(el.shadowRoot);
  }
})(document);
for (const box of seen) if (box.checked) box.click();
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_main_job(logs: Path) -> None:
    env = {**os.environ, "TRAINKIT_LOG_DIR": str(logs)}
    args = ["model=cnn", "trainer.max_epochs=5", "trainer.enable_progress_bar=false"]
    subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, env=env, check=True)


def browser(width: int, height: int, profile: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    if shutil.which("chromium"):
        options.binary_location = shutil.which("chromium")
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-quic", f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = shutil.which("chromedriver")
    return webdriver.Chrome(service=Service(driver) if driver else None, options=options)


def shoot(base: str, tab: str, out: Path, wait: float) -> None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    path, width, height = TABS[tab]
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(width, height, profile)
        try:
            driver.get(base + path)
            time.sleep(wait)
            if tab == "timeseries":
                # all of a short run's points in the charts: "Ignore outliers" (on by default)
                # would cut the first epochs off; then every card group open (TensorBoard opens
                # the first two by name, epoch and test), the settings pane closed
                xpath = "//*[contains(text(), 'Ignore outliers')]/ancestor::mat-checkbox//input"
                collapsed = "button.group-toolbar:has(mat-icon[svgicon='expand_more_24px'])"
                steps = [(By.XPATH, xpath)] + [(By.CSS_SELECTOR, collapsed)] * 8
                steps += [(By.CSS_SELECTOR, "button[aria-label='Close side pane']")]
                for how, what in steps:
                    for element in driver.find_elements(how, what)[:1]:  # queried again each time
                        with contextlib.suppress(WebDriverException):
                            driver.execute_script("arguments[0].click();", element)
                            time.sleep(1)
                time.sleep(wait / 2)
            if tab == "custom_scalars":  # the same checkbox, in the Polymer dashboard's shadow DOM
                driver.execute_script(UNCHECK_IGNORE_OUTLIERS)
                time.sleep(wait / 2)
            driver.save_screenshot(str(out))
        finally:
            driver.quit()
    print(f"wrote {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", type=Path, help="runs to show (default: train the main job)")
    parser.add_argument("--tabs", nargs="+", default=list(TABS), choices=list(TABS))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--wait", type=float, default=10.0, help="seconds for a tab to draw")
    args = parser.parse_args()
    try:
        import selenium  # noqa: F401
    except ImportError:
        print("error: selenium is missing: pip install -e '.[docs]'", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        logdir = args.logdir
        if logdir is None:
            logdir = Path(tmp) / "logs"
            train_main_job(logdir)
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tensorboard.main",
                "--logdir",
                str(logdir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(120):  # until the server answers
                try:
                    urllib.request.urlopen(base + "/data/runs", timeout=5).read()
                    break
                except OSError:
                    time.sleep(0.5)
            args.out.mkdir(parents=True, exist_ok=True)
            for tab in args.tabs:
                shoot(base, tab, args.out / f"tensorboard_{tab}.png", args.wait)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
