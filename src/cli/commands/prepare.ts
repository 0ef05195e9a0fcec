import type { Command } from 'commander';
import { DEFAULT_PHOTO_DIRS, prepareNatural } from '../../data/natural.js';
import { VtokError } from '../../util/errors.js';
import { int } from '../../util/options.js';

/**
 * `vtok prepare natural --out DIR`: decodes photographs (by default those of Debian's wallpaper packages) into a
 * folder that `vtok train --data DIR` renders natural-looking clips from, and writes held-out clips as .y4m.
 */
export function registerPrepare(program: Command): void {
  program
    .command('prepare')
    .description('prepare a training data set (natural: camera motion and moving cut-outs over photographs)')
    .argument('<what>', 'natural')
    .requiredOption('--out <dir>', 'folder to write')
    .option('--photos <dirs...>', `folders of photos (default: ${DEFAULT_PHOTO_DIRS.join(' ')})`)
    .option('--heldout <n>', 'held-out clips to write', int('--heldout', { min: 1 }), 32)
    .option('--frames <n>', 'frames per held-out clip', int('--frames', { min: 1 }), 17)
    .option('--size <px>', 'held-out clip size (square)', int('--size', { min: 1 }), 128)
    .option('--seed <n>', 'seed of the held-out clips', '0')
    .option('--json', 'print JSON')
    .action(
      async (
        what: string,
        o: {
          out: string;
          photos?: string[];
          heldout: number;
          frames: number;
          size: number;
          seed: string;
          json?: boolean;
        },
      ) => {
        if (what !== 'natural') throw new VtokError(`unknown data set "${what}" (known: natural)`);
        const m = await prepareNatural({
          out: o.out,
          sources: o.photos,
          heldoutClips: o.heldout,
          frames: o.frames,
          size: o.size,
          seed: Number(o.seed),
          log: (line) => process.stderr.write(`${line}\n`),
        });
        const test = m.photos.filter((p) => p.split === 'test').length;
        const summary = {
          out: o.out,
          photos: m.photos.length,
          train: m.photos.length - test,
          test,
          heldout: m.heldout?.files.length ?? 0,
        };
        console.log(
          o.json
            ? JSON.stringify(summary)
            : `${summary.photos} photos (${summary.train} train, ` +
                `${test} held out), ${summary.heldout} held-out clips → ${o.out}`,
        );
      },
    );
}
