/**
 * Issue 16: an OME-TIFF's µm/px comes from its OME-XML PhysicalSizeX/Y (in
 * their units), ahead of the TIFF resolution tags, on both readers; an
 * unusable stated size is null with a warning, as for every other MPP.
 */
import { mkdtempSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { openSlide } from '../../src/slide/slide.js';
import { omeMpp } from '../../src/slide/mpp.js';
import { withIfd0Tags, withOpenSlide } from '../support/slide_support.js';

const ome = (pixels: string, images = 1) =>
  '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">' +
  Array.from({ length: images }, (_, i) =>
    `<Image ID="Image:${i}"><Pixels DimensionOrder="XYCZT" ID="Pixels:${i}" SizeC="3" SizeT="1" SizeX="256" SizeY="192" SizeZ="1" Type="uint8" ${i === 0 ? pixels : 'PhysicalSizeX="99"'}/></Image>`).join('') +
  '</OME>';

test('omeMpp reads the first Image\'s PhysicalSizeX/Y in its units', (t) => {
  t.deepEqual(omeMpp(ome('PhysicalSizeX="0.2527" PhysicalSizeY="0.2531"'))?.mpp, { x: 0.2527, y: 0.2531 });
  t.deepEqual(omeMpp(ome('PhysicalSizeX="250" PhysicalSizeXUnit="nm" PhysicalSizeY="0.000252" PhysicalSizeYUnit="mm"', 2))?.mpp, { x: 0.25, y: 0.252 });
  t.deepEqual(omeMpp(ome('PhysicalSizeX="0.5" PhysicalSizeXUnit="µm"'))?.mpp, { x: 0.5, y: 0.5 });
  t.is(omeMpp(ome('')), null, 'no physical size stated');
  t.is(omeMpp('Aperio Image Library v12'), null, 'not OME-XML');
  for (const pixels of ['PhysicalSizeX="9e999"', 'PhysicalSizeX="-1"', 'PhysicalSizeX="0.5" PhysicalSizeXUnit="furlong"']) {
    const r = omeMpp(ome(pixels));
    t.is(r?.mpp, null, pixels);
    t.regex(r?.warnings[0] ?? '', /OME-XML states a physical pixel size .* treated as unknown/, pixels);
  }
  t.regex(omeMpp('<OME><Image><Pixels PhysicalSizeX="0.5"></Image>')?.warnings[0] ?? 'parsed', /OME-XML|physical/);
});

/** A tiled TIFF whose resolution tags say 1000 µm/px and whose OME-XML says 250 nm. */
async function omeTiff(path: string): Promise<void> {
  const tiff = await sharp({ create: { width: 256, height: 192, channels: 3, background: { r: 230, g: 180, b: 200 } } })
    .tiff({ tile: true, tileWidth: 64, tileHeight: 64, xres: 10, yres: 10, resolutionUnit: 'cm' })
    .toBuffer();
  const xml = ome('PhysicalSizeX="250" PhysicalSizeXUnit="nm" PhysicalSizeY="250" PhysicalSizeYUnit="nm"');
  await writeFile(path, withIfd0Tags(Buffer.from(tiff), [{ tag: 270, type: 2, count: xml.length + 1, data: Buffer.from(`${xml}\0`, 'latin1') }], 0));
}

test('the sharp reader takes an OME-TIFF\'s µm/px from its OME-XML, not its resolution tags', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'histoflow-ome-')), 'a.ome.tif');
  await omeTiff(path);
  const slide = await openSlide(path, { reader: 'sharp' });
  try {
    t.is(slide.format, 'ome-tiff');
    t.deepEqual(slide.mpp, { x: 0.25, y: 0.25 });
  } finally {
    await slide.close();
  }
});

const [withLib, title] = withOpenSlide('the OpenSlide reader gives the same µm/px for that file');
withLib(title, async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'histoflow-ome-')), 'a.ome.tif');
  await omeTiff(path);
  const slide = await openSlide(path, { reader: 'openslide' });
  try {
    t.deepEqual(slide.mpp, { x: 0.25, y: 0.25 });
  } finally {
    await slide.close();
  }
});
