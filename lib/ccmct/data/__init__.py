"""The data set as files: SlideRunner databases, slides (OpenSlide), download, subsets, statistics (Table 1),
result files and COCO / GeoJSON export. (The synthetic generator, a producer of data roots, is ``ccmct.synthetic``;
nothing here imports it.)

Modules (import them directly; this package imports nothing so that ``import ccmct.data.x`` stays cheap)::

    ccmct.data.sliderunner   SlideRunnerDB: read / write SlideRunner SQLite databases
    ccmct.data.slides        open_slide, cached_slide, tissue_mask (the only OpenSlide user)
    ccmct.data.svs_writer    write_svs: Aperio-style pyramidal TIFF
    ccmct.data.stats         table1, table1_totals: the paper's Table 1 and Table 6 totals
    ccmct.data.export        export_coco, export_geojson
"""
