"""facezoo's data layer: every dataset returns a sample ``dict`` with fixed key names.

Common keys (see ``docs/architecture.md``):

=====================  ===========================  ==============================================
key                    shape / type                 meaning
=====================  ===========================  ==============================================
``image``              (3, H, W) float in [-1, 1]   the network input (profile, source, A, …)
``landmarks``          (68, 2) float32              (x, y) pixels of ``image``, iBUG-68 order
``mask``               (H, W) int64                 CelebAMask-HQ 19-label map of ``image``
``pose``               (3,) float32                 yaw, pitch, roll of ``image`` in degrees
``identity``           int64 scalar                 identity id, contiguous within the split
``target``             (3, H, W) float in [-1, 1]   the ground-truth output
``target_landmarks``   (68, 2) float32              landmarks of ``target``
``target_mask``        (H, W) int64                 labels of ``target``
``target_pose``        (3,) float32                 pose of ``target`` (frontalization, re-posing)
=====================  ===========================  ==============================================

View-specific keys (:mod:`facezoo.data.synthetic`):

* re-posing (GANnotation): ``third``, ``third_landmarks``, ``third_mask``, ``third_pose`` — the third face C
  of the A → B → C triplet (``image`` = A, ``target`` = B).
* makeup (PSGAN): ``reference``, ``reference_landmarks``, ``reference_mask``, ``reference_pose``,
  ``reference_identity`` — the makeup reference (another identity); ``makeup`` (16,) float32 in [0, 1]
  (:meth:`~facezoo.data.synthetic.Makeup.as_vector`); ``target`` is the source wearing the reference's makeup.
* mask editing (MaskGAN): ``edit`` int64, an index into :data:`~facezoo.data.synthetic.MASK_EDITS`;
  ``target_mask`` is the edited mask and ``target`` the image rendered with the edit.

File-backed datasets add:

* ``five_points`` / ``target_five_points`` (5, 2) float32 — Multi-PIE's ``.5pt`` alignment points (eyes, nose
  tip, mouth corners) of ``image`` / ``target`` (:mod:`facezoo.data.multipie`), used instead of 68 landmarks.
* ``name`` (str) — the file the sample was read from; ``reference_name`` for MT's makeup reference
  (:mod:`facezoo.data.mt`, which has no ``target``: real MT pairs have no ground truth).
* ``frame_numbers`` — the A/B/C frame indices of a 300VW triplet (:mod:`facezoo.data.video300w`).
* ``inter_mask_1`` / ``inter_mask_2`` (H, W) int64 — the MaskGAN demo's precomputed interpolated masks of a training
  face (``train_label_inter_{1,2}/``, :mod:`facezoo.data.celebamask`'s aligned layout); in that layout's test
  folders ``mask`` is the demo's ``label_ref`` (the mask of ``image``) and ``target_mask`` its ``label`` (the mask
  to render in the style of ``image``), with no ``target``.

pSp's pairs (:mod:`facezoo.data.psp`): ``image`` is the encoder's source, ``(1, H, W)`` sketch / grey in [-1, 1] or
``(19, H, W)`` one-hot CelebAMask-HQ labels in {0, 1} where the task asks for them
(:data:`~facezoo.data.psp.TASK_CHANNELS`); ``factor`` int64 — the super-resolution down-sampling factor;
``source_name`` (str) — the source file of a :class:`~facezoo.data.psp.PairedFolders` pair.

"left"/"right" always mean the image side: ``l_eye`` is the image-left eye, landmarks 36-41.
"""
