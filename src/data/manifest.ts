/**
 * The public data files that tests, benchmarks and the demo use, where their
 * originals live, and the SHA-256 of the copy the project was tested with.
 * None of them is in the repository: they are read from the data folder
 * (src/data/folder.ts) or fetched into the cache by `npm run fetch-data`.
 *
 * URLs are the upstream projects' raw files at pinned commits (or, for the
 * slide, OpenSlide's own test-data site). The checksums were taken from the
 * files as tested; the slide's and ihc.png's also equal the ones their
 * projects publish. `derived` files are not downloaded: fetch-data makes them
 * from their source with the recipe named there.
 */
export interface DataFile {
  /** Local name: <origin>__<original name>. */
  name: string;
  url: string;
  sha256: string;
  bytes: number;
  licence: string;
}

export interface DerivedFile {
  name: string;
  /** The data file it is made from. */
  from: string;
  /** How it is made (see fetch.ts). */
  recipe: 'tiled-pyramid-jpeg';
  licence: string;
}

const gh = (repo: string, commit: string, path: string) => `https://raw.githubusercontent.com/${repo}/${commit}/${path}`;
const HISTOLAB = 'histolab/histolab';
const TIA = 'TissueImageAnalytics/tiatoolbox';
const HENORM = 'schaugf/HEnorm_python';
const HENORM_COMMIT = '269253fb55cfea78e243ba08acd5829f10226a73';

export const DATA_FILES: readonly DataFile[] = [
  { name: 'histolab__cmu_small_region.svs', url: 'https://openslide.cs.cmu.edu/download/openslide-testdata/Aperio/CMU-1-Small-Region.svs',
    sha256: 'ed92d5a9f2e86df67640d6f92ce3e231419ce127131697fbbce42ad5e002c8a7', bytes: 1938955, licence: 'OpenSlide test data (CC0-1.0)' },
  { name: 'histolab__kidney-48-5.tif', url: gh(HISTOLAB, 'c9459cf79e95404d1340f00566cf158d83d8d416', 'tests/fixtures/tiff-images/kidney-48-5.tif'),
    sha256: '2dbe184b45f25624d6fa533b781867b52d0fa8f82741a3f0799dd6738f12c681', bytes: 4035719, licence: 'Apache-2.0' },
  { name: 'histolab__tcga-lung-rgb.png', url: gh(HISTOLAB, 'a0f2d326583010351705098a9b10aa03cce1bbfd', 'tests/fixtures/pil-images-rgb/tcga-lung-rgb.png'),
    sha256: 'd0e238484fcac55c35c898a0e70c81e0f7e489ba0539b3b97640ddc9ef2c955d', bytes: 422606, licence: 'Apache-2.0' },
  { name: 'histolab__expect__tcga-lung-rgb-hematoxylin-channel.png', url: gh(HISTOLAB, 'a0f2d326583010351705098a9b10aa03cce1bbfd', 'tests/expectations/pil-images-rgb/tcga-lung-rgb-hematoxylin-channel.png'),
    sha256: '4c8188433c324384a7df63c9554f44d2872bdb6908c88722e9a49985a3ab290f', bytes: 371621, licence: 'Apache-2.0' },
  { name: 'histolab__expect__tcga-lung-rgb-eosin-channel.png', url: gh(HISTOLAB, 'bd3b0fbd776a66816876abf463bf0c6ac02d6ce7', 'tests/expectations/pil-images-rgb/tcga-lung-rgb-eosin-channel.png'),
    sha256: '44af796f303e88527a2bdb0db326f173d599c5315d6797e426d746f21a2c45a6', bytes: 291929, licence: 'Apache-2.0' },
  { name: 'histolab__expect__tcga-lung-rgb-dab-channel.png', url: gh(HISTOLAB, '6eac7e59ee54aa7e332c10ad091b57fba429a122', 'tests/expectations/pil-images-rgb/tcga-lung-rgb-dab-channel.png'),
    sha256: '1608e80a9d652369b2107f10e600971de991e0f0bfdd09cfd5bfeec697b713dc', bytes: 319051, licence: 'Apache-2.0' },
  { name: 'histolab__expect__tissue-mask-cmu-1-small-region.npy', url: gh(HISTOLAB, '89e02b5068fb376807f72a281f398a146ec53eda', 'tests/expectations/mask-arrays/tissue-mask-cmu-1-small-region.npy'),
    sha256: 'f856a82580c1ee108d066e3e5a0dde7b31f99113aa821cba673b8b57ab8cdad4', bytes: 65544, licence: 'Apache-2.0' },
  { name: 'histolab__expect__tissue-mask-kidney-48-5.npy', url: gh(HISTOLAB, '35446c8828999b30b21205c593f397afd30aacc7', 'tests/expectations/mask-arrays/tissue-mask-kidney-48-5.npy'),
    sha256: 'bcc2127a50d1296be5c7f7a7c1a36b04e086b9574decb352d07435fdbbbc8758', bytes: 13538, licence: 'Apache-2.0' },
  { name: 'histolab__tiles__almost-white-1.png', url: gh(HISTOLAB, 'e84819b8f8359719ea80dabdba763f4800da5243', 'tests/fixtures/tiles/almost-white-1.png'),
    sha256: 'f39270b0758305b786472176da94f2f3f6e29c630b66967ff58f3af0c1d19755', bytes: 8742, licence: 'Apache-2.0' },
  { name: 'histolab__tiles__kidney-ihc-level0-350-530-360-540.png', url: gh(HISTOLAB, '35446c8828999b30b21205c593f397afd30aacc7', 'tests/fixtures/tiles/kidney-ihc-level0-350-530-360-540.png'),
    sha256: 'fe59114580332dafdc3d037a0089612bfcd02d59aaffa2fcda35a0bec14b335e', bytes: 424, licence: 'Apache-2.0' },
  { name: 'histolab__tiles__no-tissue-red-pen.png', url: gh(HISTOLAB, '794c4a7bfc2fd8cc7f61e9f1ce67a1d9efbabdaa', 'tests/fixtures/tiles/no-tissue-red-pen.png'),
    sha256: '5f15aef49db039f97c4f6bd3da34f20181461e82c83d8e2bd2477d6de9598ca3', bytes: 152519, licence: 'Apache-2.0' },
  { name: 'histolab__tiles__no-tissue.png', url: gh(HISTOLAB, 'abd9f3eabbcd019e25286508b1d431f7636abf75', 'tests/fixtures/tiles/no-tissue.png'),
    sha256: 'da63b85f6fe884a9e7f7c913abf357e8f12cf709b5bb10a8371c870a6c0992a2', bytes: 45037, licence: 'Apache-2.0' },
  { name: 'histolab__tiles__tissue-level0-4302-10273-4814-10785.png', url: gh(HISTOLAB, 'ef10dc48631ac81a6a7f34aee2936231b968e683', 'tests/fixtures/tiles/tissue-level0-4302-10273-4814-10785.png'),
    sha256: '1c0536622f4d39daaa41265fa1cf397fc09e56f5084badcc537987221f9f90ba', bytes: 526437, licence: 'Apache-2.0' },
  { name: 'tiatoolbox__source_image.png', url: gh(TIA, 'b19ca5a8d884e62b3f0c42e91e3fa7c3cc042448', 'tests/data/source_image.png'),
    sha256: 'b3232998ab7ea8510a8e66ceb49b5d66a754fadb745fdeb03b9ddea94e79e5ca', bytes: 126606, licence: 'BSD-3-Clause' },
  { name: 'tiatoolbox__target_image.png', url: gh(TIA, 'b61e625f5c4dc78ad1255bbd27408b3eadd30702', 'tiatoolbox/data/target_image.png'),
    sha256: '23c1e65fb65f2c5ba6aba2ad958181860e196b280a025f35e91296ba8ba51b6c', bytes: 2018995, licence: 'BSD-3-Clause' },
  { name: 'tiatoolbox__norm_macenko.png', url: gh(TIA, '04c6c22ad697a9739074d738b0352455c584d75d', 'tests/data/norm_macenko.png'),
    sha256: '6b7cb50fb563ff44caa91fe248bb22198168dc62240967a8650263225d9fb21f', bytes: 126146, licence: 'BSD-3-Clause' },
  { name: 'tiatoolbox__norm_reinhard.png', url: gh(TIA, 'b19ca5a8d884e62b3f0c42e91e3fa7c3cc042448', 'tests/data/norm_reinhard.png'),
    sha256: '63987589ca55813103d3f8929d0bc6028bb5982d91671fc3205e281be88630e5', bytes: 126538, licence: 'BSD-3-Clause' },
  { name: 'tiatoolbox__norm_ruifrok.png', url: gh(TIA, 'fc2fab44d5d68ead364284fcaac72e1cc4ec347f', 'tests/data/norm_ruifrok.png'),
    sha256: '953fc3609bf086b4160ca8166a1b4eccd0196280bb292997efc97a1251c482a2', bytes: 124372, licence: 'BSD-3-Clause' },
  { name: 'tiatoolbox__norm_vahadane.png', url: gh(TIA, '24759a325d40fc97304271f69189ae0011346cb8', 'tests/data/norm_vahadane.png'),
    sha256: '48b598e7e5b2429ee92e9d9c6ad6a52a57fdbf543a5f0a9e5a2f71f5b748e7f5', bytes: 126204, licence: 'BSD-3-Clause' },
  { name: 'tiatoolbox__kather1.tif', url: gh(TIA, '64f55914555cd6ff0664f29cd93cd90836591f9e', 'tests/data/sample_patches/kather1.tif'),
    sha256: '280430e5ec4175342ffd9f151c7fdc735c3f6ea1a431a6f6000ce22383c6bc4c', bytes: 152228, licence: 'CC-BY-4.0 (NCT-CRC-HE-100K)' },
  { name: 'tiatoolbox__kather2.tif', url: gh(TIA, '64f55914555cd6ff0664f29cd93cd90836591f9e', 'tests/data/sample_patches/kather2.tif'),
    sha256: '89cb422af2877eb1578152194eedfcb57b9e5869659f011ad688e4893241bf76', bytes: 152220, licence: 'CC-BY-4.0 (NCT-CRC-HE-100K)' },
  { name: 'HEnorm_python__example1.png', url: gh(HENORM, HENORM_COMMIT, 'imgs/example1.png'),
    sha256: '10922470a17cf1a4794cbbaada7e50aff3ad960aa144cfdb65c8d1f627e1d710', bytes: 1951311, licence: 'MIT-style' },
  { name: 'HEnorm_python__norm1.png', url: gh(HENORM, HENORM_COMMIT, 'imgs/norm1.png'),
    sha256: 'fb60e94c55e04053d2ac70764fa63c69f70259eaf770aa5c98f4baba98532486', bytes: 2118679, licence: 'MIT-style' },
  { name: 'HEnorm_python__norm1_H.png', url: gh(HENORM, HENORM_COMMIT, 'imgs/norm1_H.png'),
    sha256: 'd18baaeaad75b9f73d00de58f7a8a7c0829431b4aae4c2883342248dda739384', bytes: 1972481, licence: 'MIT-style' },
  { name: 'HEnorm_python__norm1_E.png', url: gh(HENORM, HENORM_COMMIT, 'imgs/norm1_E.png'),
    sha256: 'e7be258dd55cd4935f5ea6bccfe3d88c35c44432303cddd858f068095b0899ce', bytes: 1540843, licence: 'MIT-style' },
  { name: 'scikit-image__ihc.png', url: gh('scikit-image/scikit-image', '60764df36c34c5202554aae507722836b6108d10', 'skimage/data/ihc.png'),
    sha256: 'f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef', bytes: 477916, licence: 'no known copyright restrictions' },
  { name: 'torchstain__source.png', url: gh('EIDOSLAB/torchstain', '809924c41e6fb4a41e2b9e6856d77bfd61d60a1d', 'data/source.png'),
    sha256: '16eac22a223ce292c1728c0bd1bbba709a0317afd835122fc48a9f840ca3f277', bytes: 682789, licence: 'MIT' },
  { name: 'torchstain__target.png', url: gh('EIDOSLAB/torchstain', '809924c41e6fb4a41e2b9e6856d77bfd61d60a1d', 'data/target.png'),
    sha256: '7ffbb38effdff20d950acc2d059a378190a88d3b5a5a2564e28200654cb21837', bytes: 697154, licence: 'MIT' },
];

export const DERIVED_FILES: readonly DerivedFile[] = [
  { name: 'derived__cmu-1-small-region__tiled-pyramid-jpeg.tif', from: 'histolab__cmu_small_region.svs', recipe: 'tiled-pyramid-jpeg',
    licence: 'OpenSlide test data (CC0-1.0)' },
];

/** The demo's inputs: the sample slide and the stain target. */
export const DEMO_FILES = ['histolab__cmu_small_region.svs', 'tiatoolbox__target_image.png'] as const;
