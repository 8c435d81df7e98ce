"""The review page in a real headless browser (Debian's chromium driven by
Selenium through chromium-driver): upload a bundled photo, wait for the
overlay, check that the figures shown are the API's, save a screenshot
(slow; .ci/run installs the browser)."""
import json
import os
import os.path as osp
import shutil

import pytest

from conftest import DEMO, REPO
from serving import segment, served

webdriver = pytest.importorskip('selenium.webdriver')
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
DRIVER = shutil.which('chromedriver')


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and DRIVER),
                    reason='needs chromium and chromium-driver (apt)')
def test_review_page_shows_the_api_figures(exported_models, tmp_path):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
    photo = osp.join(DEMO, 'val', '4.jpg')
    with served(exported_models['b0'], '--threads', '1') as (base, _):
        with open(photo, 'rb') as f:
            status, _, body = segment(base, [('file', '4.jpg', f.read())])
        assert status == 200
        [api] = body['results']
        options = Options()
        options.binary_location = CHROMIUM
        for arg in ('--headless=new', '--no-sandbox', '--disable-gpu',
                    '--disable-dev-shm-usage', '--window-size=1200,1600',
                    f'--user-data-dir={tmp_path / "profile"}'):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service(DRIVER), options=options)
        try:
            driver.set_page_load_timeout(60)
            driver.get(base + '/')
            driver.find_element(By.ID, 'files').send_keys(photo)
            wait = WebDriverWait(driver, 120)
            wait.until(ec.text_to_be_present_in_element_attribute(
                (By.ID, 'status'), 'data-done', '1'))
            box = driver.find_element(By.CSS_SELECTOR, '.photo')
            img = box.find_element(By.CSS_SELECTOR, 'img.overlay')
            wait.until(lambda d: d.execute_script(
                'return arguments[0].complete && '
                'arguments[0].naturalWidth > 0', img))
            shown = box.find_element(By.CSS_SELECTOR, '.damage-share').text
            assert shown == f'damage {api["damage_share"] * 100:.2f}%'
            regions = box.find_element(By.CSS_SELECTOR, '.num-regions').text
            assert regions == f'{api["num_regions"]} region(s)'
            rows = box.find_elements(By.CSS_SELECTOR, 'table.regions tr')
            assert len(rows) == 1 + api['num_regions']
            href = box.find_element(By.CSS_SELECTOR, 'a.mask-link'
                                    ).get_attribute('href')
            assert href == 'data:image/png;base64,' + api['mask_png']
            assert not driver.find_element(By.ID, 'csv').get_attribute(
                'disabled')
            shot_dir = osp.join(REPO, 'work_dirs', 'screenshots')
            os.makedirs(shot_dir, exist_ok=True)
            driver.save_screenshot(str(tmp_path / 'review.png'))
            shutil.copy(tmp_path / 'review.png',
                        osp.join(shot_dir, 'review_page.png'))
            assert (tmp_path / 'review.png').stat().st_size > 10_000
            logs = json.dumps(driver.get_log('browser'))
            assert 'SEVERE' not in logs, logs
        finally:
            driver.quit()
