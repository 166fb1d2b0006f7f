/**
 * regions.xml: the tumour regions as ASAP XML (what ASAP and Camelyon tools
 * open), the same polygons as regions.geojson in level-0 px. ASAP polygons
 * have no holes: a region's outline is an annotation of group "Tumor", each
 * hole one of group "Exclusion" (Camelyon's convention, which src/tiling/asap.ts
 * reads back: tumour minus exclusion).
 */
import type { RegionCollection } from './regions.js';

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The regions as an ASAP_Annotations document. */
export function regionsAsapXml(regions: RegionCollection): string {
  const annotations: string[] = [];
  const add = (name: string, group: string, colour: string, ring: number[][]) => {
    // GeoJSON rings repeat their first position at the end; ASAP's are open.
    const open = ring.length > 1 && ring[0]![0] === ring.at(-1)![0] && ring[0]![1] === ring.at(-1)![1] ? ring.slice(0, -1) : ring;
    const coords = open.map(([x, y], k) => `        <Coordinate Order="${k}" X="${x}" Y="${y}" />`).join('\n');
    annotations.push(`    <Annotation Name="${escape(name)}" Type="Polygon" PartOfGroup="${group}" Color="${colour}">\n      <Coordinates>\n${coords}\n      </Coordinates>\n    </Annotation>`);
  };
  for (const f of regions.features) {
    const polygons = f.geometry.type === 'Polygon' ? [f.geometry.coordinates] : f.geometry.coordinates;
    polygons.forEach((rings, p) => {
      const name = polygons.length > 1 ? `${f.properties.name} part ${p + 1}` : f.properties.name;
      rings.forEach((ring, r) => (r === 0 ? add(name, 'Tumor', '#C80000', ring) : add(`${name} hole ${r}`, 'Exclusion', '#00A000', ring)));
    });
  }
  return `<?xml version="1.0"?>
<ASAP_Annotations>
  <Annotations>
${annotations.join('\n')}
  </Annotations>
  <AnnotationGroups>
    <Group Name="Tumor" PartOfGroup="None" Color="#C80000"><Attributes /></Group>
    <Group Name="Exclusion" PartOfGroup="None" Color="#00A000"><Attributes /></Group>
  </AnnotationGroups>
</ASAP_Annotations>
`;
}
