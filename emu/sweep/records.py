"""A point's record (its configuration, the guest's exit status, the fields its output gave, every counter of
--stats-json) and the files records are written to: CSV (stdlib), JSON lines, and Parquet when pandas and
pyarrow are installed. The same files are what `faultlab plot` reads."""
import csv
import importlib.util
import io
import json
import os

# what `faultlab run --stats-json` writes beside the counters
STATUS_KEYS = ('exit_code', 'killed_by')
FORMATS = ('csv', 'jsonl', 'parquet')


def _number(text):
    """A parsed field's text as an int or a float when it is one, else the text."""
    for conv in (int, float):
        try:
            return conv(text)
        except (TypeError, ValueError):
            pass
    return text


def parse_fields(regexes, stdout):
    """{group name: value} from the guest's output: for each regex its last match (a program's final figure
    is usually its last line); a group that never matched is None."""
    fields = {}
    for rx in regexes:
        matches = list(rx.finditer(stdout))
        for name in rx.groupindex:
            fields.setdefault(name, None)
            if matches and matches[-1].group(name) is not None:
                fields[name] = _number(matches[-1].group(name))
    return fields


def make_record(point, outcome, regexes):
    """The record of one point: point, the grid's values, status, exit_code, killed_by, the parsed fields,
    then every counter (nested ones as they are: a dict per CPU, the abort reasons ...); a counter whose
    name a grid value or a field took is stats.NAME."""
    rec = {'point': point.index}
    rec.update(point.config)
    stats = outcome.get('stats')
    rec['status'] = 'failed' if stats is None else 'ok'
    rec['error'] = outcome.get('error')
    rec['exit_code'] = stats.get('exit_code') if stats else None
    rec['killed_by'] = stats.get('killed_by') if stats else None
    for name, value in parse_fields(regexes, outcome.get('stdout') or '').items():
        rec.setdefault(name, value)
    for key, value in (stats or {}).items():
        if key not in STATUS_KEYS:
            # a counter named like a grid value or a field (cpus: the per-CPU counters) keeps a prefix
            rec['stats.' + key if key in rec else key] = value
    return rec


def flatten(rec):
    """A record with scalar values only: a dict's entries as key.sub, a list as its JSON text."""
    out = {}
    for key, value in rec.items():
        if isinstance(value, dict):
            for sub, v in flatten(value).items():
                out['%s.%s' % (key, sub)] = v
        elif isinstance(value, list):
            out[key] = json.dumps(value, sort_keys=True)
        else:
            out[key] = value
    return out


def columns(rows):
    """Every column of some rows, in the order they first appear."""
    cols = {}
    for r in rows:
        for k in r:
            cols.setdefault(k, None)
    return list(cols)


def format_of(path):
    """'csv', 'jsonl' or 'parquet' by a file name's suffix (.json is JSON lines too); ValueError otherwise."""
    ext = os.path.splitext(path)[1].lower()
    fmt = {'.csv': 'csv', '.jsonl': 'jsonl', '.json': 'jsonl', '.ndjson': 'jsonl', '.parquet': 'parquet'}.get(ext)
    if fmt is None:
        raise ValueError('%s: unknown format (the suffixes are .csv, .jsonl, .json, .parquet)' % path)
    return fmt


def csv_text(records):
    """The records as CSV, one flattened record a row."""
    rows = [flatten(r) for r in records]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns(rows), lineterminator='\n')
    w.writeheader()
    for r in rows:
        w.writerow({k: '' if v is None else v for k, v in r.items()})
    return buf.getvalue()


def jsonl_text(records):
    """The records as JSON lines, nested values as they are."""
    return ''.join(json.dumps(r) + '\n' for r in records)


def _pandas():
    """pandas, when it and pyarrow are installed (the `sweep` extra); ValueError otherwise."""
    try:
        import pandas
    except ImportError:
        pandas = None
    if pandas is None or importlib.util.find_spec('pyarrow') is None:     # pandas' Parquet engine
        raise ValueError('Parquet needs pandas and pyarrow (pip install faultlab[sweep])')
    return pandas


def write_records(path, records):
    """Write records to path in the format its suffix names ('-': CSV on stdout)."""
    if path == '-':
        print(csv_text(records), end='')
        return
    fmt = format_of(path)
    if fmt == 'parquet':
        pd = _pandas()
        pd.DataFrame([flatten(r) for r in records]).to_parquet(path, index=False)
        return
    text = csv_text(records) if fmt == 'csv' else jsonl_text(records)
    with open(path, 'w') as f:
        f.write(text)


def _csv_value(text):
    """A CSV cell back as a number, None (empty) or text."""
    if text == '':
        return None
    if text in ('True', 'False'):
        return text == 'True'
    return _number(text)


def read_records(path):
    """Flat records (dicts of scalars) from a CSV, JSON lines, a JSON array or a Parquet file."""
    fmt = format_of(path)
    if fmt == 'parquet':
        pd = _pandas()
        return [{k: (None if v != v else v) for k, v in r.items()}
                for r in pd.read_parquet(path).to_dict('records')]
    with open(path, newline='') as f:
        if fmt == 'csv':
            return [{k: _csv_value(v) for k, v in r.items()} for r in csv.DictReader(f)]
        text = f.read()
    try:
        if text.lstrip().startswith('['):
            data = json.loads(text)
        else:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as e:
        raise ValueError('%s: not JSON lines: %s' % (path, e)) from None
    if not all(isinstance(r, dict) for r in data):
        raise ValueError('%s: expected one JSON object per line' % path)
    return [flatten(r) for r in data]
