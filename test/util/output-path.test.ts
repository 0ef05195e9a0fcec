import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { removeOwnTemps, removeStaleTemps, writeFileAtomic } from '../../src/util/atomic.js';
import { checkOutputDir, checkOutputFile, STDOUT } from '../../src/util/output-path.js';
import { tempDir } from '../io/fixtures.js';

const dir = tempDir('outpath');

test(
  'checkOutputFile: absent or regular files pass, a symlink ' +
    'resolves to its target, "-" only where stdout is allowed',
  () => {
    assert.equal(checkOutputFile(join(dir, 'new.vtok'), { option: '-o' }), join(dir, 'new.vtok'));
    assert.equal(checkOutputFile(join(dir, 'a', 'b', 'deep.vtok'), { option: '-o' }), join(dir, 'a', 'b', 'deep.vtok'));
    writeFileSync(join(dir, 'old.vtok'), 'x');
    assert.equal(checkOutputFile(join(dir, 'old.vtok'), { option: '-o' }), join(dir, 'old.vtok'));
    symlinkSync(join(dir, 'old.vtok'), join(dir, 'link.vtok'));
    assert.equal(checkOutputFile(join(dir, 'link.vtok'), { option: '-o' }), join(dir, 'old.vtok'));
    assert.equal(checkOutputFile('-', { option: '-o', stdout: true }), STDOUT);
    assert.throws(() => checkOutputFile('-', { option: '-o' }), /-o - \(standard output\) is not supported here/);
  },
);

test('checkOutputFile refuses non-regular files, directories and parents that are files, naming the output', () => {
  mkdirSync(join(dir, 'adir'));
  assert.throws(
    () => checkOutputFile(join(dir, 'adir'), { option: '-o' }),
    (e: Error) =>
      e.message.includes(join(dir, 'adir')) &&
      /is a directory, not a regular file; refusing to replace it/.test(e.message),
  );
  assert.throws(
    () => checkOutputFile('/dev/full', { option: '-o', stdout: true }),
    new RegExp(
      /\/dev\/full: output is a character device, not a regular file; refusing to replace it; /.source +
        /use -o - to write to standard output/.source,
    ),
  );
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  assert.throws(() => checkOutputFile(join(dir, 'fifo'), { option: '-o' }), /is a FIFO, not a regular file/);
  symlinkSync('/dev/null', join(dir, 'null-link'));
  assert.throws(() => checkOutputFile(join(dir, 'null-link'), { option: '-o' }), /is a character device/);
  writeFileSync(join(dir, 'afile'), 'x');
  assert.throws(
    () => checkOutputFile(join(dir, 'afile', 'x.vtok'), { option: '-o' }),
    (e: Error) =>
      e.message.startsWith(join(dir, 'afile', 'x.vtok')) &&
      e.message.includes(`${join(dir, 'afile')} is not a directory`),
  );
  if (process.getuid?.() !== 0) {
    // permissions do not bind root
    mkdirSync(join(dir, 'ro'), { mode: 0o555 });
    assert.throws(() => checkOutputFile(join(dir, 'ro', 'x.vtok'), { option: '-o' }), /is not writable \(EACCES\)/);
  }
});

test('checkOutputDir: folders or absent; a file is refused', () => {
  assert.equal(checkOutputDir(join(dir, 'runs', 'r1'), { option: '--out' }), join(dir, 'runs', 'r1'));
  assert.throws(
    () => checkOutputDir(join(dir, 'afile'), { option: '--out' }),
    /--out must be a folder; this is a file/,
  );
  assert.throws(() => checkOutputDir('/dev/null', { option: '--out' }), /this is a character device/);
});

test('an output that is an input is refused: by name, through a symlink, a hard link or another spelling', () => {
  const d = tempDir('outpath-inputs');
  const clip = join(d, 'clip.mp4');
  writeFileSync(clip, 'video');
  symlinkSync(clip, join(d, 'soft.mp4'));
  linkSync(clip, join(d, 'hard.mp4'));
  for (const out of [clip, join(d, 'soft.mp4'), join(d, 'hard.mp4'), `${d}/./clip.mp4`]) {
    const refusal = 'refusing to overwrite an input, give another name';
    const message = `${out}: -o is the input ${clip} (the same file); ${refusal}`;
    assert.throws(
      () => checkOutputFile(out, { option: '-o', inputs: [clip] }),
      (e: Error) => e.message === message,
    );
  }
  // the input named through a link is the same file too
  const viaLink = { option: '-o', inputs: [undefined, join(d, 'hard.mp4')] };
  assert.throws(() => checkOutputFile(clip, viaLink), /-o is the input .*hard\.mp4/);
  // another file, a new name, standard input and options not given pass
  writeFileSync(join(d, 'copy.mp4'), 'video');
  assert.equal(checkOutputFile(join(d, 'copy.mp4'), { option: '-o', inputs: [clip] }), join(d, 'copy.mp4'));
  assert.equal(
    checkOutputFile(join(d, 'new.vtok'), { option: '-o', inputs: [clip, '-', undefined] }),
    join(d, 'new.vtok'),
  );
  assert.equal(checkOutputFile(STDOUT, { option: '-o', stdout: true, inputs: ['-'] }), STDOUT);
  // folders: the run a command reads is not its --out
  mkdirSync(join(d, 'run'));
  symlinkSync(join(d, 'run'), join(d, 'run-link'));
  const run = { option: '--out', inputs: [join(d, 'run')] };
  assert.throws(
    () => checkOutputDir(join(d, 'run-link'), run),
    /run-link: --out is the input .*run \(the same folder\)/,
  );
  assert.equal(checkOutputDir(join(d, 'packed'), run), join(d, 'packed'));
});

test('writeFileAtomic: a failure names the target and leaves no temp file', () => {
  assert.throws(
    () => writeFileAtomic(join(dir, 'adir'), 'x'),
    (e: Error) => e.message === `${join(dir, 'adir')}: cannot write (EISDIR: is a directory)`,
  );
  assert.throws(
    () => writeFileAtomic(join(dir, 'afile', 'y.json'), 'x'),
    /afile\/y\.json: cannot write \((EEXIST|ENOTDIR)/,
  );
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.endsWith('.tmp')),
    [],
  );
  assert.deepEqual(readdirSync(join(dir, 'adir')), []);
});

test('removeStaleTemps removes temp entries of dead processes only', () => {
  const d = tempDir('stale');
  // a pid that is certainly not running: a child that has exited
  const dead = Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']));
  mkdirSync(join(d, `step-0000020.tmp-${dead}`));
  writeFileSync(join(d, `step-0000020.tmp-${dead}`, 'model.safetensors'), 'partial');
  writeFileSync(join(d, `latest.json.${dead}.1700000000000.tmp`), '{');
  writeFileSync(join(d, `mine.json.${process.pid}.1700000000000.tmp`), '{');
  writeFileSync(join(d, 'config.json'), '{}');
  assert.deepEqual(removeStaleTemps(d).sort(), [`latest.json.${dead}.1700000000000.tmp`, `step-0000020.tmp-${dead}`]);
  assert.deepEqual(readdirSync(d).sort(), ['config.json', `mine.json.${process.pid}.1700000000000.tmp`]);
  assert.deepEqual(removeStaleTemps(join(d, 'missing')), []);
});

test("removeOwnTemps removes this process's temp files of one target only", () => {
  const d = tempDir('own');
  const mine = `y.mp4.${process.pid}.1700000000000.tmp`;
  const others = ['y.mp4', `y.mp4.${process.pid + 1}.1700000000000.tmp`, `yy.mp4.${process.pid}.1700000000000.tmp`];
  for (const name of [mine, ...others]) writeFileSync(join(d, name), 'x');
  removeOwnTemps(join(d, 'y.mp4'));
  assert.deepEqual(readdirSync(d).sort(), others.sort());
  removeOwnTemps(join(d, 'missing', 'y.mp4'));
});
