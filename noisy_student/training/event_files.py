"""TensorBoard event files after a resume: no step twice.

A job killed after it logged steps past its last checkpoint logs those steps
again when it resumes from that checkpoint, and TensorBoard would then show
two curves over them. `drop_events_after(folder, step)` rewrites the event
files of `folder` without the events of later steps (atomically, each file
whole or not at all); the controller calls it for the model_dir and its
`eval_<split>` folders before it writes anything.
"""

from __future__ import annotations

import os

import tensorflow as tf

from data import writers

EVENTS_MARKER = 'tfevents'


def event_files(folder: str) -> list[str]:
  """The event files directly in `folder` (none when it does not exist)."""
  if not tf.io.gfile.isdir(folder):
    return []
  return sorted(os.path.join(folder, name)
                for name in tf.io.gfile.listdir(folder)
                if EVENTS_MARKER in name and not writers.is_temp_name(name))


def drop_events_after(folder: str, step: int) -> int:
  """Removes the events of steps > `step` from the event files of `folder`;
  returns how many were removed. Files without such events are untouched."""
  removed = 0
  for path in event_files(folder):
    kept, dropped = [], 0
    for raw in tf.data.TFRecordDataset(path):
      record = raw.numpy()
      if tf.compat.v1.Event.FromString(record).step > step:
        dropped += 1
      else:
        kept.append(record)
    if dropped:
      writers.write_records(path, kept)
      removed += dropped
  return removed
