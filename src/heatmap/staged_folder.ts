/**
 * StagedFolder: all-or-nothing output into a folder. Files are written into a
 * hidden staging folder inside it and renamed into place only once all of them
 * exist; abandoning removes the staging folder, whatever was already moved,
 * and the folder itself if this object created it and it is left empty.
 */
import { mkdtemp, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { makeDirectory } from '../output.js';
import { join } from 'node:path';

export class StagedFolder {
  private createdDir = false;
  private stage: string | undefined;
  private readonly moved: string[] = [];

  /** `existed`: whether `out` was there before (then it is never removed). */
  constructor(readonly out: string, private readonly existed: boolean) {}

  /** Creates `out` if missing and a staging folder `prefix`XXXXXX inside it; returns the staging folder. */
  async open(prefix: string): Promise<string> {
    this.createdDir = !this.existed;
    await makeDirectory(this.out, 'out');
    this.stage = await mkdtemp(join(this.out, prefix));
    return this.stage;
  }

  /**
   * Moves every staged file or folder (by key: its name) into `out`, one
   * rename each, then removes the staging folder; returns the paths by key.
   * A folder of that name already in `out` (an earlier run's) is first moved
   * into the staging folder, since a rename cannot replace a non-empty folder.
   */
  async commit(files: Readonly<Record<string, string>>): Promise<Record<string, string>> {
    const stage = this.stage!;
    const outputs: Record<string, string> = {};
    for (const [key, name] of Object.entries(files)) {
      const old = await stat(join(this.out, name)).catch(() => null);
      if (old?.isDirectory()) await rename(join(this.out, name), join(stage, `.replaced-${name}`));
      await rename(join(stage, name), join(this.out, name));
      this.moved.push(join(this.out, name));
      outputs[key] = join(this.out, name);
    }
    await rm(stage, { recursive: true, force: true });
    return outputs;
  }

  /** Undoes what open and commit did (never throws). */
  async abandon(): Promise<void> {
    if (this.stage) await rm(this.stage, { recursive: true, force: true }).catch(() => undefined);
    await Promise.all(this.moved.map((f) => rm(f, { recursive: true, force: true }).catch(() => undefined)));
    if (this.createdDir && (await readdir(this.out).catch(() => ['?'])).length === 0) await rmdir(this.out).catch(() => undefined);
  }
}
