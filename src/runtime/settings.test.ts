import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_RUNTIME_SETTINGS, prebuiltImagesFromImageConfig } from './settings.js';

test('production defaults', () => {
  assert.equal(DEFAULT_RUNTIME_SETTINGS.defaultCpuLimit, '1000m');
  assert.equal(DEFAULT_RUNTIME_SETTINGS.toolHomeBase, '/data/project');
  assert.ok(DEFAULT_RUNTIME_SETTINGS.prebuiltImages.some((i) => i.short_name === 'python3.11'));
});

test('prebuilt images from images-v1.yaml prefer the webservice variant', () => {
  const r = prebuiltImagesFromImageConfig(`
bullseye:
  image: docker-registry.tools.wmflabs.org/toolforge-bullseye-sssd
  state: stable
  aliases: [toolforge-bullseye]
  variants:
    jobs-framework:
      image: docker-registry.tools.wmflabs.org/toolforge-bullseye-sssd
php8.4:
  image: docker-registry.svc.toolforge.org/toolforge-php84-sssd-web
  state: stable
  aliases: [toolforge-php84]
  variants:
    jobs-framework:
      image: docker-registry.svc.toolforge.org/toolforge-php84-sssd-base
    webservice:
      image: docker-registry.svc.toolforge.org/toolforge-php84-sssd-web
webonly:
  state: deprecated
  variants: {}
`);
  assert.deepEqual(r, {
    ok: true,
    value: [
      {
        short_name: 'bullseye',
        aliases: ['toolforge-bullseye'],
        state: 'stable',
        host: 'docker-registry.tools.wmflabs.org',
        path: 'toolforge-bullseye-sssd',
        tag: 'latest',
        variant_paths: [],
      },
      {
        short_name: 'php8.4',
        aliases: ['toolforge-php84'],
        state: 'stable',
        host: 'docker-registry.svc.toolforge.org',
        path: 'toolforge-php84-sssd-web',
        tag: 'latest',
        variant_paths: ['toolforge-php84-sssd-base'],
      },
    ],
  });
  assert.equal(prebuiltImagesFromImageConfig('- a list').ok, false);
  assert.equal(prebuiltImagesFromImageConfig('a: [').ok, false);
});
