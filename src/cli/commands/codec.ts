import type { Command } from 'commander';
import type * as E from '../../engine/core.js';
import { decodeFile, encodeFile, STDIN } from '../../tokenizers/files.js';
import { checkOutputFile, STDOUT } from '../../util/output-path.js';
import { GRAY_HELP, int, num, oneOf } from '../../util/options.js';

/**
 * `vtok encode` and `vtok decode`: a video to a .vtok/.vtkc token file and back (src/tokenizers/files.ts).
 */

/** `--precision fp32|int8`: the inference precision of a tokenizer's encode/decode. */
export const parsePrecision = oneOf<E.Precision>('--precision', 'fp32', 'int8');

interface EncodeOpts {
  model?: string;
  output: string;
  size?: number;
  gray?: boolean;
  precision: E.Precision;
  json?: boolean;
}
interface DecodeOpts {
  output: string;
  model?: string;
  fps?: number;
  sample?: number;
  precision: E.Precision;
  json?: boolean;
}

const PRECISION_HELP = 'inference precision: fp32, or int8 (quantized convolutions, calibrated on the first clip)';

export function registerCodec(program: Command): void {
  program
    .command('encode')
    .description('encode a video or image into a .vtok token file with a trained tokenizer')
    .argument('<input>', 'video or image file, or - for standard input')
    .option(
      '--model <run>',
      'run directory of a trained tokenizer (default: the shipped ' +
        'natural-video model for colour input, the Moving MNIST one for gray)',
    )
    .requiredOption(
      '-o, --output <file>',
      'token file to write: .vtok (ids bit-packed) or .vtkc (ids entropy coded), or - for standard output (.vtok)',
    )
    .option(
      '--size <px>',
      'resize the short side and center-crop to this square size (default: the training size)',
      int('--size', { min: 8, max: 4096 }),
    )
    .option('--gray', GRAY_HELP)
    .option('--precision <p>', PRECISION_HELP, parsePrecision, 'fp32')
    .option('--json', 'print a JSON summary')
    .action(async (input: string, o: EncodeOpts) => {
      const output = checkOutputFile(o.output, { option: '-o', stdout: true, inputs: [input] });
      const r = await encodeFile(input, output, {
        model: o.model,
        size: o.size,
        gray: o.gray,
        precision: o.precision,
        quiet: o.json,
      });
      const summary = {
        output: o.output,
        kind: r.kind,
        precision: o.precision,
        clips: r.clips,
        frames: r.frames,
        tokensPerClip: r.tokensPerClip,
        vocabSize: r.vocabSize,
        converted: r.notes,
      };
      // With -o - the tokens own standard output; the summary goes to stderr.
      const say = (line: string) => (output === STDOUT ? process.stderr.write(`${line}\n`) : console.log(line));
      if (!o.json) for (const n of r.notes) process.stderr.write(`vtok: note: ${n}\n`);
      const to = o.output === STDOUT ? 'standard output' : o.output;
      const tokens = `${r.clips} clips × ${r.tokensPerClip} tokens (vocabulary ${r.vocabSize})`;
      const from = input === STDIN ? 'standard input' : input;
      say(o.json ? JSON.stringify(summary) : `${from}: ${r.frames} frames → ${tokens} → ${to}`);
    });

  program
    .command('decode')
    .description('decode a .vtok token file back to video (mp4, gif, webm, …) or an image')
    .argument('<tokens>', 'token file (.vtok or .vtkc), or - for standard input')
    .requiredOption('-o, --output <file>', 'video or image to write')
    .option('--model <run>', 'run directory of the tokenizer (default: the one recorded in the token file)')
    .option(
      '--fps <n>',
      'frame rate of the output (default: the source rate)',
      num('--fps', { min: 0, exclusiveMin: true, max: 1000 }),
    )
    .option(
      '--sample <k>',
      'of tokens from vtok generate --samples n: sample k alone (1 = the leftmost; default: all side by side)',
      int('--sample', { min: 1, max: 64 }),
    )
    .option('--precision <p>', PRECISION_HELP, parsePrecision, 'fp32')
    .option('--json', 'print a JSON summary')
    .action(async (file: string, o: DecodeOpts) => {
      const output = checkOutputFile(o.output, { option: '-o', inputs: [file] });
      const { model, fps, sample, precision } = o;
      const { frames: n } = await decodeFile(file, output, { model, fps, sample, precision });
      const from = file === STDIN ? 'standard input' : file;
      console.log(o.json ? JSON.stringify({ output: o.output, frames: n }) : `${from} → ${n} frames → ${o.output}`);
    });
}
