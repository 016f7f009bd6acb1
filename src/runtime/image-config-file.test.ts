import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { configSchema } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import { createLogger } from '../log/logger.js';
import { FollowedImageConfig } from './image-config-file.js';
import { DEFAULT_PREBUILT_IMAGES, loadRuntimeSettings } from './settings.js';

const root = mkdtempSync(join(tmpdir(), 'jobs-storage-image-config-'));
after(() => rmSync(root, { recursive: true, force: true }));

const KEY = 'images-v1.yaml';

function imageConfig(...names: string[]): string {
  return names
    .map(
      (n) =>
        `${n}:\n  state: stable\n  aliases: []\n  variants:\n    jobs-framework:\n` +
        `      image: docker-registry.tools.wmflabs.org/toolforge-${n.replace('.', '')}-sssd-base\n`,
    )
    .join('');
}

let volumes = 0;
/**
 * A ConfigMap volume as kubelet's atomic writer lays it out: the key is a symlink into `..data`, itself a symlink to
 * a timestamped directory; an update writes a new directory and renames a new `..data` link over the old one.
 */
function configMapVolume(text: string) {
  volumes += 1;
  const dir = join(root, `volume-${volumes}`);
  mkdirSync(dir);
  let generation = 0;
  const publish = (content: string) => {
    generation += 1;
    const data = `..2026_08_20_10_00_0${generation}.${generation}`;
    mkdirSync(join(dir, data));
    writeFileSync(join(dir, data, KEY), content);
    symlinkSync(data, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    if (generation > 1)
      rmSync(join(dir, `..2026_08_20_10_00_0${generation - 1}.${generation - 1}`), { recursive: true });
  };
  publish(text);
  symlinkSync(join('..data', KEY), join(dir, KEY));
  return { file: join(dir, KEY), publish };
}

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: createLogger({ level: 'info', destination }) };
}

const shortNames = (images: readonly { short_name: string }[]) => images.map((i) => i.short_name);

describe('runtime.imageConfigFile follows the mounted ConfigMap', () => {
  test('a ConfigMap update (kubelet swapping ..data) is picked up by settings already handed out', () => {
    const volume = configMapVolume(imageConfig('python3.11'));
    const config = configSchema.parse({ runtime: { imageConfigFile: volume.file } });
    const { lines, logger } = capture();
    const settings = loadRuntimeSettings(config, { recheckMs: 0, logger });
    assert.deepEqual(shortNames(settings.prebuiltImages), ['python3.11']);

    volume.publish(imageConfig('python3.11', 'php8.4'));
    assert.deepEqual(shortNames(settings.prebuiltImages), ['python3.11', 'php8.4']);
    assert.deepEqual(
      lines.map((l) => [l['msg'], l['images']]),
      [['image config reloaded', 2]],
    );
    // Unchanged since: no read, no line.
    assert.deepEqual(shortNames(settings.prebuiltImages), ['python3.11', 'php8.4']);
    assert.equal(lines.length, 1);
  });

  test('the file is looked at again only after recheckMs', () => {
    const volume = configMapVolume(imageConfig('node18'));
    let clock = 0;
    const followed = new FollowedImageConfig(volume.file, { recheckMs: 1000, now: () => clock });
    volume.publish(imageConfig('node20'));
    clock = 999;
    assert.deepEqual(shortNames(followed.images()), ['node18']);
    clock = 1000;
    assert.deepEqual(shortNames(followed.images()), ['node20']);
  });

  test('a bad or missing version keeps the last good table, is logged once, and the next good one is loaded', () => {
    const volume = configMapVolume(imageConfig('ruby3.1'));
    const { lines, logger } = capture();
    const followed = new FollowedImageConfig(volume.file, { recheckMs: 0, logger });

    volume.publish('- not: a mapping\n');
    assert.deepEqual(shortNames(followed.images()), ['ruby3.1']);
    assert.deepEqual(shortNames(followed.images()), ['ruby3.1']);
    assert.deepEqual(
      lines.map((l) => [l['level'], l['msg'], l['images']]),
      [['warn', 'image config unreadable, keeping the last good table', 1]],
    );

    rmSync(volume.file);
    assert.deepEqual(shortNames(followed.images()), ['ruby3.1']);
    assert.deepEqual(shortNames(followed.images()), ['ruby3.1']);
    assert.equal(lines.length, 2);
    assert.match(String(lines[1]?.['err']), /ENOENT/);

    symlinkSync(join('..data', KEY), volume.file);
    volume.publish(imageConfig('ruby3.1', 'tcl8.6'));
    assert.deepEqual(shortNames(followed.images()), ['ruby3.1', 'tcl8.6']);
    assert.equal(lines[2]?.['msg'], 'image config reloaded');
  });

  test('at startup a file that cannot be read or parsed is a configuration error', () => {
    const missing = configSchema.parse({ runtime: { imageConfigFile: join(root, 'nowhere', KEY) } });
    assert.throws(
      () => loadRuntimeSettings(missing),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.code === 'ERR_CONFIG_INVALID' &&
        /runtime\.imageConfigFile: cannot read/.test(err.message),
    );
    const bad = configMapVolume('a: [');
    assert.throws(
      () => loadRuntimeSettings(configSchema.parse({ runtime: { imageConfigFile: bad.file } })),
      (err: unknown) => err instanceof ConfigError && /runtime\.imageConfigFile: +not YAML/.test(err.message),
    );
  });

  test('no file: the built-in table', () => {
    const settings = loadRuntimeSettings(configSchema.parse({}));
    assert.equal(settings.prebuiltImages, DEFAULT_PREBUILT_IMAGES);
  });
});
