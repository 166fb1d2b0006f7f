/** The command line as a user runs it: outputs, --json, and clear errors. */
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { defineFlags, optionsHelp, parseFlags } from '../../src/cli/flags.js';
import { IN_CI, dataFile, histoflow } from '../support/helpers.js';

const FLAGS = defineFlags({
  batch: { type: 'int', value: 'B', min: 1, max: 65536, default: 64, help: 'images per forward pass (default {default})' },
  lr: { type: 'number', value: 'LR', min: 0, max: 10, help: 'learning rate' },
  split: { type: 'choice', value: 'S', choices: ['train', 'test'], default: 'train', help: '{choices} (default {default})' },
  target: { type: 'list', value: 'T', help: 'target image (repeat for several)' },
  only: { type: 'list', separator: ',', value: 'NAMES', help: 'comma-separated names,\nfrom the manifest' },
  json: { type: 'boolean', help: 'print JSON' },
});



test('histoflow info --json reports the addon, backends, gpu.js and TF.js', async (t) => {
  const r = await histoflow('info', '--json');
  t.is(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  t.truthy(info.version);
  t.true(info.addon.loaded, info.addon.reason);
  t.regex(info.addon.simd, /avx|sse|neon|scalar/);
  t.true(info.addon.threads >= 1);
  t.is(typeof info.addon.cuda.compiled, 'boolean');
  t.true(Array.isArray(info.addon.cuda.devices));
  t.deepEqual(info.kernelBackends.map((b: { name: string }) => b.name), ['cuda', 'cpu', 'gpujs', 'js']);
  t.true(Array.isArray(info.tfjsBackends));
  // onnxruntime-node is optional; CI installs it (with its CPU provider).
  if (IN_CI) t.true(info.onnxruntime.available, info.onnxruntime.reason);
  if (info.onnxruntime.available) t.true(info.onnxruntime.providers.includes('cpu'));
  else t.regex(info.onnxruntime.reason, /onnxruntime-node/);
  t.is(typeof info.addon.zeroCopyAsync, 'boolean');
});

test('histoflow stain writes one PNG per input under its own name, and --json gives the fits', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'hf-stain-'));
  const white = join(mkdtempSync(join(tmpdir(), 'hf-white-')), 'blank-glass.png');
  await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 255, g: 255, b: 255 } } }).png().toFile(white);
  const r = await histoflow(
    'stain', dataFile('tiatoolbox__source_image.png'), white,
    '--method', 'macenko', '--preset', 'tiatoolbox', '--target', dataFile('tiatoolbox__target_image.png'),
    '--out', out, '--json', '--single-stains',
  );
  t.is(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  t.is(summary.method, 'macenko');
  t.is(summary.target.he.length, 6);
  t.deepEqual(summary.images.map((i: { status: string }) => i.status), ['normalized', 'unchanged']);
  t.deepEqual(readdirSync(out).sort(), [
    'blank-glass.png',
    'tiatoolbox__source_image.png',
    'tiatoolbox__source_image_E.png',
    'tiatoolbox__source_image_H.png',
  ]);
  const meta = await sharp(join(out, 'tiatoolbox__source_image.png')).metadata();
  t.is(meta.width, 256);
  t.is(meta.height, 256);
  t.is(r.stderr, '', 'no progress output with --json');
});

test('histoflow stain with a bad option or a missing file exits 1 with a message naming it, writing nothing', async (t) => {
  const out = join(mkdtempSync(join(tmpdir(), 'hf-stain-')), 'out');
  const bad = await histoflow('stain', dataFile('tiatoolbox__source_image.png'), '--method', 'magic', '--out', out);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /--method/);
  const missing = await histoflow('stain', 'no-such-file.png', '--out', out);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /no-such-file\.png/);
  const notImage = join(dirname(out), 'not-an-image.png');
  writeFileSync(notImage, 'this is text, not a PNG\n');
  const corrupt = await histoflow('stain', notImage, '--out', out);
  t.is(corrupt.code, 1);
  t.regex(corrupt.stderr, /cannot read image/);
  t.false(existsSync(out) && readdirSync(out).length > 0);
});

test('flags parse to typed values, with the table\'s defaults for what is not given', (t) => {
  const r = parseFlags('x', FLAGS, ['--lr', '0.5', '--target', 'a', '--target', 'b', '--only', 'p, q,', '--json', '--batch=8']);
  t.deepEqual(r.values, { batch: 8, lr: 0.5, split: 'train', target: ['a', 'b'], only: ['p', 'q'], json: true });
  t.deepEqual(parseFlags('x', FLAGS, []).values, { batch: 64, lr: undefined, split: 'train', target: undefined, only: undefined, json: false });
  t.is(parseFlags('x', FLAGS, ['--lr', '-0.5', '--help']).help, true, 'with --help no value is checked');
  t.deepEqual(parseFlags('x', FLAGS, ['a', '--', '--b'], { positionals: true }).positionals, ['a', '--b']);
});

test('a bad flag is a RangeError naming the flag and quoting what was typed', (t) => {
  const batch = 'Expected an integer between 1 and 65536 for --batch but received';
  const bad: Array<[string[], string | RegExp]> = [
    [['--batch', 'abc'], `${batch} 'abc' of type string`],
    [['--batch', '1.5'], `${batch} '1.5' of type string`],
    [['--batch', '-1'], `${batch} '-1' of type string`],
    [['--batch', ''], `${batch} '' of type string`],
    [['--batch'], `${batch} nothing`],
    [['--batch', '--json'], /for --batch but received nothing \('--json' after it is an option; .* write --batch=VALUE\)$/],
    [['--lr', 'fast'], 'Expected a number between 0 and 10 for --lr but received \'fast\' of type string'],
    [['--lr', '11'], 'Expected a number between 0 and 10 for --lr but received \'11\' of type string'],
    [['--split', 'dev'], 'Expected one of train, test for --split but received \'dev\' of type string'],
    [['--json=yes'], 'Expected no value for --json but received \'yes\' of type string'],
    [['--target'], 'Expected a value (T) for --target but received nothing'],
    [['--bogus'], /^Unknown option '--bogus' for histoflow x; expected one of --batch, --lr, .*, --json, --help$/],
    [['stray'], 'Expected no positional arguments for histoflow x but received \'stray\''],
  ];
  for (const [argv, message] of bad) t.throws(() => parseFlags('x', FLAGS, argv), { instanceOf: RangeError, message }, argv.join(' '));
});

test('the Options rows of --help are made from the table, -h, --help last', (t) => {
  t.is(optionsHelp(FLAGS), `Options:
  --batch B     images per forward pass (default 64)
  --lr LR       learning rate
  --split S     train | test (default train)
  --target T    target image (repeat for several)
  --only NAMES  comma-separated names,
                from the manifest
  --json        print JSON
  -h, --help    this help
`);
});

test('every command prints its help with exit 0, and a hostile value exits 1 with one line naming the flag', async (t) => {
  const commands = ['info', 'stain', 'tile', 'augment', 'bench', 'demo', 'fetch-data', 'pack', 'inspect', 'train', 'evaluate', 'predict', 'predict-slide', 'batch', 'worker'];
  const helps = await Promise.all([...commands.map((c) => [c]), ['synth', 'patches'], ['synth', 'slide'], ['queue', 'status']].map((c) => histoflow(...c, '--help')));
  helps.forEach((r, i) => {
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /\nOptions:\n(.*\n)*  -h, --help +this help\n$/, String(i));
  });
  for (const [args, flag] of [
    [['train', '--data', 'd', '--batch', 'abc'], '--batch'],
    [['train', '--data', 'd', '--epochs', ''], '--epochs'],
    [['predict-slide', 'x', '--model', 'm', '--out', 'o', '--batch', '-1'], '--batch'],
    [['tile', 'x', '--out', 'o', '--size', '1.5'], '--size'],
    [['inspect', 'x', '--bogus'], '--bogus'],
    [['demo', '--out'], '--out'],
    [['batch', 'x.csv', '--job', 'tile', '--out', 'o', '--workers', '0'], '--workers'],
    [['worker', '--queue', 'redis://127.0.0.1:1/q', '--concurrency', 'many'], '--concurrency'],
    [['queue', 'status', '--queue', 'http://x'], '--queue'],
  ] as const) {
    const r = await histoflow(...args);
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, /^histoflow: [^\n]+\n$/, args.join(' '));
    t.true(r.stderr.includes(flag), r.stderr);
  }
});
