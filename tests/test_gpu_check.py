"""The accelerator check's dry run, and the CIFAR-10 archive it carries."""

import io
import json
import os
import subprocess
import tarfile
import zipfile

import pytest

from scripts import cifar10_archive
from tests import fixtures


def test_archive_round_trip_keeps_every_jpeg_byte(tmp_path):
  original = tmp_path / 'cifar10-jpg.zip'
  fixtures.write_zip(original, fixtures.cifar10_entries())
  packed = tmp_path / 'cifar10.tar.xz'
  cifar10_archive.pack(str(original), str(packed))
  rebuilt = tmp_path / 'out' / 'cifar10-jpg.zip'
  cifar10_archive.unpack(str(packed), str(rebuilt))
  with zipfile.ZipFile(original) as a, zipfile.ZipFile(rebuilt) as b:
    assert sorted(a.namelist()) == sorted(b.namelist())
    for name in a.namelist():
      assert a.read(name) == b.read(name)


def test_archive_with_a_changed_image_is_refused(tmp_path):
  original = tmp_path / 'cifar10-jpg.zip'
  entries = fixtures.cifar10_entries()
  fixtures.write_zip(original, entries)
  packed = tmp_path / 'cifar10.tar.xz'
  cifar10_archive.pack(str(original), str(packed))
  with tarfile.open(packed) as tar:
    members = [(m, tar.extractfile(m).read()) for m in tar]
  tampered = tmp_path / 'tampered.tar'
  with tarfile.open(tampered, 'w') as tar:
    for member, blob in members:
      if member.name.startswith('train/'):
        blob = blob[:-1] + bytes([blob[-1] ^ 1])
      tar.addfile(member, io.BytesIO(blob))
  with pytest.raises(ValueError, match='differs from the zip'):
    cifar10_archive.unpack(str(tampered), str(tmp_path / 'x' / 'c.zip'))


@pytest.mark.slow
def test_smoke_check_runs_every_part_and_writes_its_results(tmp_path):
  """``gpu_check.sh --smoke``: the GPU command, shrunk to a CPU's seconds."""
  original = tmp_path / 'cifar10-jpg.zip'
  fixtures.write_zip(original, fixtures.cifar10_entries())
  packed = tmp_path / 'cifar10.tar.xz'
  cifar10_archive.pack(str(original), str(packed))
  out = tmp_path / 'out'
  process = subprocess.run(
      [
          'bash',
          'scripts/gpu_check.sh',
          '--smoke',
          '--out',
          str(out),
          '--cifar_dir',
          str(tmp_path / 'data'),
          '--cifar_archive',
          str(packed),
      ],
      cwd=fixtures.REPO_ROOT,
      capture_output=True,
      text=True,
      timeout=900,
      check=False,
  )
  assert process.returncode == 0, process.stderr[-3000:]
  parts = (out / 'parts.md').read_text()
  for name in ('install', 'env', 'steps', 'end_to_end'):
    assert f'| {name} | 0 |' in parts, parts
  steps = json.loads((out / 'steps.json').read_text())
  for workload in ('WRN-10 smoke', 'ResNet-50 bf16 smoke'):
    rows = steps[f'{workload}/step_time']
    assert [r[1] for r in rows] == ['dense', 'rigl']
    assert rows[0][4] == '1.000' and float(rows[1][3]) > 0
    assert float(steps[f'{workload}/topology_update'][3]) > 0
    assert [r[1] for r in steps[f'{workload}/memory']] == ['dense', 'rigl']
  e2e = json.loads((out / 'end_to_end.json').read_text())['end_to_end']
  assert e2e['steps'] == 20
  assert e2e['end_to_end_steps_per_second'] > 0 and e2e['ratio'] > 0
  summary = (out / 'gpu_check.md').read_text()
  for title in (
      '### Environment',
      '### WRN-10 smoke: train step against dense',
      '### ResNet-50 bf16 smoke: memory',
      '### CIFAR-10 WRN-22-2 job against its bare steps',
  ):
    assert title in summary
  assert os.path.exists(tmp_path / 'data' / 'cifar10-jpg.zip')
